"""Reading the gateway's logs and turning what Envoy printed into a cause."""
