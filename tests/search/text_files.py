"""Small real files with words in them: a PDF with a text layer, a picture of printed lines."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pdf_files import write_pdf


def text_pdf(path: Path, pages: list[list[str]]) -> Path:
    """A US-letter PDF whose page i shows the lines ``pages[i]`` in Helvetica (so it has a text layer)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + b" ".join(f"{4 + 2 * k} 0 R".encode() for k in range(len(pages))) +
               f"] /Count {len(pages)} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for k, lines in enumerate(pages):
        content = b"BT /F1 14 Tf 72 700 Td 18 TL " + b" ".join(
            b"(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1") + b") '"
            for line in lines) + b" ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * k} 0 R "
                       f"/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        objects.append(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
    return write_pdf(path, objects)


def text_picture(lines: list[str], size=(900, 500)) -> Image.Image:
    """A white picture with black printed lines (DejaVu Sans, which matplotlib ships)."""
    import matplotlib

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), 32)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 60 * i), line, fill="black", font=font)
    return img


def srt(cues: list[tuple[float, float, str]]) -> str:
    """SubRip text for (start s, end s, words) cues."""
    def t(s: float) -> str:
        ms = round(s * 1000)
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "".join(f"{i}\n{t(a)} --> {t(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))


def video(path: Path, seconds: int, subtitles: Path | None = None, fps: int = 2) -> Path:
    """A small grey-ramp video of ``seconds`` (32×32, ``fps``), in Matroska with the SubRip file
    ``subtitles`` muxed in as a subtitle stream when given (PyAV)."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="matroska" if path.suffix == ".mkv" else None) as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        source = av.open(str(subtitles)) if subtitles else None
        sub_stream = out.add_stream_from_template(source.streams.subtitles[0]) if source else None
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), (i * 7) % 256, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if source:
            for packet in source.demux(source.streams.subtitles[0]):
                if packet.dts is not None:
                    packet.stream = sub_stream
                    out.mux(packet)
            source.close()
    return path
