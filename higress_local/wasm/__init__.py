"""Plugin modules: reading them, deciding what can run them, building and adapting them."""
