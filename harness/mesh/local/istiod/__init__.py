"""Real istiod (pilot-discovery) for the local mesh: built from the istio.io/istio Go module and run standalone."""
