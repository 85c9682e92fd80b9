"""What hlocal knows about Higress: releases, the host functions each links, what stock Envoy lacks."""
