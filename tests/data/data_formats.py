"""Writers of the real on-disk formats and a local HTTP server, shared by the data tests.

(A module with a unique name rather than ``conftest`` so that importing it never picks up another
folder's conftest.)
"""
from __future__ import annotations

import hashlib
import http.server
import io
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
from scipy.io import wavfile


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- CIFAR-10 -----------------------------------------------------------------------------------
def cifar_batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    # the Python-2 pickles have bytes keys
    return {b"batch_label": b"fixture", b"labels": labels, b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def tar_gz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return buffer.getvalue()


# -- Fashion-MNIST ------------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


# -- Speech Commands ----------------------------------------------------------------------------
GSC_WORDS = {"yes": 0.6, "no": 0.45, "up": 0.8, "bed": 0.5, "wow": 0.7}  # word -> clip length (s) < 1 s


def write_wav(path: Path, wave: np.ndarray, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(wave, -1, 1) * 32767).astype(np.int16))


# -- local HTTP server --------------------------------------------------------------------------
class FileServer:
    """Serves ``files`` (path -> bytes). ``truncate`` requests (the first ones) announce the full
    length but send only half and close; ``ranges`` says whether Range requests get a 206."""

    def __init__(self):
        self.files: dict = {}
        self.truncate = 0
        self.ranges = True
        self.requests: list = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                header = self.headers.get("Range")
                if header and server.ranges:
                    start = int(header.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if server.truncate > 0:
                    server.truncate -= 1
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


