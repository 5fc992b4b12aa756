"""Sample applications the meshes deploy; they ship inside the distribution."""
