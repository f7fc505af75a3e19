import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

import polymodal
from polymodal.world import WorldDataset
from polymodal.models.imagebind import TowerConfig
from polymodal.modalities.text import train_tokenizer
from polymodal.world.files import write_files
from polymodal.world.sensor_inputs import world_processor
from polymodal.registry import preset
from polymodal.tasks import Embedder
from polymodal.search.ingest import index_folder
from polymodal.search.store import Store
from polymodal.models.imagebind import imagebind_from_clip


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tiny bound ImageBind (random clip-tiny towers, 1-block sensors) saved with a tokenizer."""
    folder = tmp_path_factory.mktemp("ib")
    torch.manual_seed(0)
    sensors = preset("imagebind-world")
    for m in ("audio", "depth", "thermal", "imu"):
        setattr(sensors, m, TowerConfig(32, 1, 2))
    model = imagebind_from_clip(polymodal.create("clip-tiny"), sensors)
    polymodal.save(model, folder, processor=world_processor(model.config))  # as `polymodal bind` saves it
    texts = [WorldDataset("train", 64, modalities=("caption",))[i]["caption"] for i in range(64)]
    train_tokenizer(texts, "clip", 400, context_length=16).save(folder)
    return folder


@pytest.fixture(scope="session")
def qa_dir(tmp_path_factory):
    """An untrained LayoutLMv3-tiny QA model folder, as `polymodal train` saves one (the test checks
    the plumbing: which pages are read and where the answer is, not what a trained model answers)."""
    folder = tmp_path_factory.mktemp("qa")
    from polymodal.documents.processor import DocumentProcessor, default_tokenizer
    from polymodal.models.document_tasks import DocumentTaskConfig
    from polymodal.registry import build
    from polymodal.tasks.documents import save_labels

    torch.manual_seed(0)
    tokenizer = default_tokenizer()
    trunk = preset("layoutlmv3-tiny")
    trunk.bert.vocab_size = tokenizer.get_vocab_size()
    model = build(DocumentTaskConfig(trunk, "qa", 1))
    polymodal.save(model, folder)
    DocumentProcessor.for_model(trunk, tokenizer).save(folder)
    save_labels(folder, "qa", [])
    return folder


@pytest.fixture(scope="session")
def world_files():
    return write_world_files


def write_world_files(folder, n, start=0):
    """Scenes start..start+n of the test split as ordinary files (no video, to stay fast)."""
    return write_files(folder, "test", n, image_size=32, start=start,
                       modalities=("image", "audio", "caption", "depth", "thermal", "imu"))


TOKEN = "s3cret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(index, *options: str, attempts: int = 3):
    """`polymodal serve` on a free port: (process, client, base URL). The port is free when chosen but
    another process may take it before the server binds; then the server exits and we try another.
    ``options`` replace the default ``--token TOKEN --max-upload-mb 0.05``."""
    options = options or ("--token", TOKEN, "--max-upload-mb", "0.05")
    for _ in range(attempts):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "polymodal.cli", "serve", str(index), "--port", str(port),
                                 *options], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                if client.get("/api/health").status_code in (200, 401):  # up (401: a token we were not told)
                    return proc, client, base
            except httpx.TransportError:
                time.sleep(0.2)
        client.close()
        error = proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no answer in 60 s"
        proc.kill()
        if "address already in use" not in error.lower():
            break
    pytest.fail(f"server did not start: {error}")


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dir, world_files):
    """`polymodal serve` on a free 127.0.0.1 port over 4 indexed world scenes: (client, files, base URL)."""
    root = tmp_path_factory.mktemp("srv")
    folder = world_files(root / "files", 4)
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for _ in range(2):
        doc.new_page(200, 300)
    doc.save(str(folder / "manual.pdf"))
    doc.close()
    embedder = Embedder.from_checkpoint(model_dir)
    index_folder(folder, embedder, Store(root / "idx", embedder.dim, embedder.model_id, str(model_dir)))
    proc, client, base = _serve(root / "idx")
    yield client, folder, base
    client.close()
    proc.terminate()
    proc.wait(10)
