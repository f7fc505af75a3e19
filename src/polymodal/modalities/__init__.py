"""Per-modality preprocessing (file → tensor) and tokenisation."""
