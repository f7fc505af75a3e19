"""Taking a model elsewhere: ONNX / OpenVINO files per embedding tower (verified against the model),
the runtimes that run them behind the :class:`~polymodal.tasks.Embedder`, and the ecosystem's own
checkpoint layouts (a Hugging Face ``CLIPModel`` folder, an open_clip state dict)."""
