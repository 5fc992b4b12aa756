"""The Istio networking API subset the harness understands: typed model, YAML loader, istiod-style validation.

``model`` holds frozen pydantic types that mirror networking.istio.io field for field; ``load``
turns YAML documents into them with an error per bad field (file, line, object, field path);
``validate`` applies istiod's cross-field rules and separates errors from warnings.
"""
