"""Model folders a hostile user hands over: files carried along (export, convert) must be regular files
that really live inside the folder."""

import shutil

from bounded import one_line_error, run_bounded


def test_export_never_copies_what_a_tokenizer_link_points_to(tmp_path, tiny_clip):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$hash:19000:0:99999:7:::\n")
    folder = tmp_path / "model"
    shutil.copytree(tiny_clip, folder)
    (folder / "special_tokens_map.json").unlink(missing_ok=True)
    (folder / "special_tokens_map.json").symlink_to(secret)
    ran = run_bounded("export", folder, "--format", "onnx", "--out", tmp_path / "out")
    assert ran.returncode != 0
    one_line_error(ran, "special_tokens_map.json is a symbolic link")
    assert not any("root:" in p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()) \
        if (tmp_path / "out").exists() else True


def test_export_refuses_a_fifo_among_the_tokenizer_files_without_hanging(tmp_path, tiny_clip):
    import os

    folder = tmp_path / "model"
    shutil.copytree(tiny_clip, folder)
    os.mkfifo(folder / "merges.txt")
    ran = run_bounded("export", folder, "--format", "onnx", "--out", tmp_path / "out", timeout=60)
    assert ran.returncode != 0
    one_line_error(ran, "merges.txt is not a regular file")
