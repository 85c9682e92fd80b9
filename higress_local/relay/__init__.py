"""hlocal's Redis relay: stock Envoy reaches Redis through it (standard library only).

The adapted module turns each Redis command of a plugin into an HTTP call to this relay on the
redis service's cluster; the relay passes the RESP command to the real redis-server and returns the
RESP reply. Run it as ``python -m higress_local.relay --port P --redis HOST:PORT [--password-file F]``.
"""
