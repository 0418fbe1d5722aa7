"""Model weights shipped inside the package (safetensors + JSON sidecar + model card per name)."""
