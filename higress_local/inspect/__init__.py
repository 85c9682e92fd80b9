"""The request inspector: find what each request became at every hop, keep the recent ones, show the diff."""
