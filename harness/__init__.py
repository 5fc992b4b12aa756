"""mesh-harness: prove from live traffic that Istio traffic policies do what they say."""
