"""Small files that decode to something huge, or claim to: the decompression bombs of issue 12,
made on the fly so the repository holds none of them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_bomb(path: Path, side: int = 14000) -> Path:
    """45 bytes: a PNG signature, an IHDR claiming side × side RGB pixels, IEND; no pixel data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b""))
    return path


def png_pixel_bomb(path: Path, side: int = 10000) -> Path:
    """A valid grey PNG of side² black pixels (100 M for 10000): about 100 KB on disk."""
    compressor, rows = zlib.compressobj(9), b"\x00" * (side + 1)
    data = b"".join(compressor.compress(rows) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def video_bomb(path: Path, frames: int = 3000, width: int = 320, height: int = 240, container: str = "mp4") -> Path:
    """``frames`` black frames: a small H.264 file that decodes to frames × width × height × 3 bytes."""
    import av

    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        for _ in range(frames):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def flac_bomb(path: Path, seconds: int = 3600, rate: int = 48000, channels: int = 2) -> Path:
    """Silence: a FLAC of a few hundred KB that decodes to seconds × rate × channels samples."""
    import soundfile as sf

    block = np.zeros((rate * 10, channels), np.float32)
    with sf.SoundFile(str(path), "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(block)
    return path


def pdf_bomb(path: Path, pages: int = 3) -> Path:
    """``pages`` pages of 14400 × 10 pt, the largest width PDF allows: a few hundred bytes."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for _ in range(pages):
        doc.new_page(14400, 10)
    doc.save(str(path))
    doc.close()
    return path


def slow_pdf(path: Path, strokes: int = 1_000_000) -> Path:
    """One 200 × 200 pt page drawing ``strokes`` lines: ~100 KB that takes seconds to render."""
    content = zlib.compress(b"0 0 m 200 200 l S\n" * strokes, 9)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path
