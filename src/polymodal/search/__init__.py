"""Index any folder of files in one embedding space and search it by text, file or arithmetic."""
