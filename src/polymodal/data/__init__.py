"""Datasets and generators."""
