"""Testing plugins with pytest against a live stack: the pytest plugin and `hlocal test`."""
