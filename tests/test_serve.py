"""The server: the official openai client round trip, bad inputs as 4xx, API keys, restart survival after SIGKILL
(50 jobs from 10 concurrent clients, the server killed twice), and the store's rules. Real processes, real HTTP,
real SQLite."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import openai
import pytest
import requests
from PIL import Image

from conftest import free_port
from kinetoscope.media import probe, read_video
from kinetoscope.serve.jobs import Limits, create_job
from kinetoscope.serve.store import MAX_ATTEMPTS, JobStore

KINETOSCOPE = [sys.executable, "-m", "kinetoscope"]
FAST = {"steps": 2}  # our extra field: two sampling steps keep a job well under a second
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")  # OpenAI's own shutdown notice


class Server:
    """A `kinetoscope serve` subprocess on a free port; `kill()` is SIGKILL, `start()` starts it again."""

    def __init__(self, db: Path, *flags: str):
        self.db, self.flags, self.port = db, flags, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        # stderr to a file, never a pipe nobody reads: a server that fills a pipe's 64 KiB blocks on its next write
        self.log = tempfile.TemporaryFile("w+")  # shared by every start: a restart that fails shows what came before

    def start(self, timeout: float = 60) -> Server:
        self.proc = subprocess.Popen(KINETOSCOPE + ["serve", "--port", str(self.port), "--db", str(self.db),
                                                    *self.flags],
                                     stdout=subprocess.DEVNULL, stderr=self.log, text=True)  # fmt: skip
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise TimeoutError("server did not start")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, key: str = "unused", retries: int = 2) -> openai.OpenAI:
        # a bounded wait per request (the client's default is 600 s, times each retry): a stuck server fails the test
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=retries, timeout=60)


@contextmanager
def running(tmp_path: Path, *flags: str):
    server = Server(tmp_path / "jobs.sqlite", *flags).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running(tmp_path_factory.mktemp("serve")) as s:
        yield s


def _png(w: int = 80, h: int = 140) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def test_the_openai_client_round_trip(server, tmp_path):
    c = server.client()
    video = c.videos.create(prompt="a red ball bounces on a gray floor", seconds="1", extra_body=FAST)
    assert video.status == "queued" and video.size == "64x112" and video.seconds == "1"
    video = c.videos.poll(video.id, poll_interval_ms=100)
    assert video.status == "completed" and video.progress == 100 and video.completed_at >= video.created_at
    mp4 = tmp_path / "ball.mp4"
    mp4.write_bytes(c.videos.download_content(video.id).read())
    assert probe(mp4).frames == 17 and (probe(mp4).width, probe(mp4).height) == (64, 112)
    for variant, magic in (("thumbnail", b"RIFF"), ("spritesheet", b"\xff\xd8")):
        assert c.videos.download_content(video.id, variant=variant).read().startswith(magic)
    assert video.id in [v.id for v in c.videos.list(limit=100)]

    image = c.videos.create(prompt="a red ball", seconds="1", input_reference=("red.png", _png(), "image/png"),
                            extra_body=FAST)  # fmt: skip
    image = c.videos.poll(image.id, poll_interval_ms=100)
    assert image.status == "completed" and image.size == "64x112"  # the image's aspect (80:140 ~ 9:16)
    first = read_video(_download(c, image.id, tmp_path / "i2v.mp4"), stop=1)[0].astype(int)
    assert abs(first[..., 0].mean() - 200) < 40 and first[..., 1].mean() < 90  # frame 0 is the red image

    remix = c.videos.poll(c.videos.remix(video.id, prompt="a blue ball", extra_body=FAST).id, poll_interval_ms=100)
    assert remix.status == "completed" and remix.remixed_from_video_id == video.id
    ext = c.videos.extend(prompt="it keeps bouncing", seconds="1", video=("ball.mp4", mp4.read_bytes(), "video/mp4"),
                          extra_body=FAST)  # fmt: skip
    ext = c.videos.poll(ext.id, poll_interval_ms=100)
    assert ext.status == "completed" and probe(_download(c, ext.id, tmp_path / "ext.mp4")).frames == 17 + 16
    by_id = requests.post(server.url + "/v1/videos/extensions", timeout=10,
                          json={"prompt": "more", "seconds": "1", "video": {"id": video.id}, **FAST})  # fmt: skip
    assert by_id.status_code == 200 and c.videos.poll(by_id.json()["id"], poll_interval_ms=100).status == "completed"

    deleted = c.videos.delete(remix.id)
    assert deleted.deleted and deleted.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        c.videos.retrieve(remix.id)


def _download(c: openai.OpenAI, video_id: str, path: Path) -> Path:
    path.write_bytes(c.videos.download_content(video_id).read())
    return path


def test_progress_counts_the_windows_a_job_runs():
    """A remix of a long video rolls windows as a long text-to-video does (an edit covers every frame now)."""
    from kinetoscope.serve.jobs import windows_of

    def count(frames: int, mode: str = "text", loop: bool = False) -> int:
        return windows_of({"frames": frames, "mode": mode, "loop": loop})

    assert [count(33), count(81), count(33, "remix"), count(81, "remix"), count(34, "remix")] == [1, 3, 1, 3, 2]
    assert count(33, loop=True) == 2 and count(17, "extend") == 1


def test_list_pages_with_a_cursor(server):
    c = server.client()
    ids = [c.videos.create(prompt=f"clip {i}", seconds="1", extra_body=FAST).id for i in range(3)]
    page = c.videos.list(limit=2, order="asc")
    seen = [v.id for v in page.data]
    while page.has_more:
        page = c.videos.list(limit=2, order="asc", after=page.last_id)
        seen += [v.id for v in page.data]
    assert seen[-3:] == ids and len(seen) == len(set(seen))
    newest = c.videos.list(limit=1, order="desc").data[0]
    assert newest.id == ids[-1]


@pytest.mark.parametrize("name, request_kw, status, words", [
    ("empty prompt", {"json": {"prompt": ""}}, 400, "prompt is required"),
    ("1 MB prompt (JSON)", {"json": {"prompt": "x" * 2**20}}, 400, "the limit is 4,000"),
    ("1 MB prompt (multipart)", {"data": {"prompt": "x" * 2**20}, "files": {"f": ("f", b"")}}, 400, "the limit is"),
    ("a PDF as input_reference", {"data": {"prompt": "a ball"},
                                  "files": {"input_reference": ("a.png", b"%PDF-1.7\n1 0 obj\n", "image/png")}},
     400, "not an image"),
    ("size 7x7", {"json": {"prompt": "a ball", "size": "7x7"}}, 400, "multiples of 16"),
    ("seconds 10000", {"json": {"prompt": "a ball", "seconds": "10000"}}, 400, "seconds 10000 is outside"),
    ("unknown model", {"json": {"prompt": "a ball", "model": "veo-9"}}, 400, "not served here"),
    ("negative not a string", {"json": {"prompt": "a ball", "negative": 5}}, 400, "negative must be a string"),
    ("1 MB negative", {"json": {"prompt": "a ball", "negative": "x" * 2**20}}, 400, "negative has 1,048,576"),
    ("a body that is not JSON", {"data": b"{oops", "headers": {"content-type": "application/json"}}, 400, "not JSON"),
])  # fmt: skip
def test_bad_inputs_get_a_clear_4xx(server, name, request_kw, status, words):
    r = requests.post(server.url + "/v1/videos", timeout=30, **request_kw)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error"
    assert requests.get(server.url + "/healthz", timeout=5).ok  # still serving


@pytest.mark.parametrize("path", ["/v1/videos/video_0123", "/v1/videos/../../etc/passwd",
                                  "/v1/videos/video_00000000000000000000000000000000/content"])  # fmt: skip
def test_unknown_ids_are_404_and_never_reach_the_disk(server, path):
    r = requests.get(server.url + path, timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_api_key_and_queue_limit(tmp_path):
    with running(tmp_path, "--api-key", "sekret", "--max-queue", "1") as s:
        with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
            s.client("wrong").videos.list()
        assert requests.get(s.url + "/v1/videos", timeout=5).status_code == 401
        c = s.client("sekret", retries=0)
        c.videos.create(prompt="a slow one", seconds="4", extra_body={"steps": 100})
        with pytest.raises(openai.RateLimitError) as e:
            c.videos.create(prompt="one too many", seconds="1")
        assert e.value.response.headers["retry-after"] == "10"
        assert requests.get(s.url + "/", timeout=5).ok  # the page itself needs no key


def test_a_killed_server_finishes_every_accepted_job(tmp_path):
    """50 jobs from 10 concurrent clients; the server is SIGKILLed twice mid-run and restarted: every job completes,
    each exactly once (clients retry with an Idempotency-Key, so a retried POST never makes a second job)."""
    server = Server(tmp_path / "jobs.sqlite", "--workers", "2").start()
    ids: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client_thread(k: int) -> None:
        c = server.client(retries=12)
        try:
            for i in range(5):
                v = c.videos.create(prompt=f"a ball number {k * 5 + i}", seconds="1", extra_body=FAST,
                                    extra_headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
                with lock:
                    ids.append(v.id)
        except BaseException as e:  # noqa: BLE001  reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=client_thread, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    try:
        for _ in range(2):
            time.sleep(2.0)
            server.kill()
            server.start()
        for t in threads:
            t.join(timeout=240)
        assert not errors, errors
        c = server.client(retries=12)
        deadline = time.time() + 300
        while time.time() < deadline:
            jobs = [v for v in c.videos.list(limit=100)]
            if len(jobs) >= 50 and all(v.status in ("completed", "failed") for v in jobs):
                break
            time.sleep(0.5)
        assert sorted(v.id for v in jobs) == sorted(ids) and len(set(ids)) == 50
        assert all(v.status == "completed" for v in jobs), [v.error for v in jobs if v.status != "completed"]
        videos = sorted((tmp_path / "jobs-files" / "videos").glob("*.mp4"))
        assert len(videos) == 50 and all(probe(p).frames == 17 for p in videos)
    finally:
        server.stop()


def test_the_store_requeues_and_gives_up_after_repeated_crashes(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    job = create_job({"prompt": "a ball", "seconds": "1"}, Limits())
    stored, new = store.add(job, "key-1")
    again, new_again = store.add(create_job({"prompt": "a ball", "seconds": "1"}, Limits()), "key-1")
    assert new and not new_again and again.id == stored.id and store.pending() == 1
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claimed = store.claim("w0")
        assert claimed.id == job.id and claimed.attempts == attempt and store.claim("w1") is None
        assert store.progress(job.id, "w0", 50) and not store.progress(job.id, "w1", 60)
        store.requeue("w0")  # the worker died
    assert store.get(job.id).status == "failed" and store.get(job.id).error["code"] == "worker_crashed"
    other = store.add(create_job({"prompt": "b", "seconds": "1"}, Limits()))[0]
    assert store.claim("w0").id == other.id and store.delete(other.id)
    assert not store.complete(other.id, "w0")  # deleted while it ran: the worker is told, nothing is resurrected


def test_openapi_document_names_every_endpoint(server):
    doc = requests.get(server.url + "/openapi.json", timeout=5).json()
    paths = doc["paths"]
    assert {"/v1/videos", "/v1/videos/{video_id}", "/v1/videos/{video_id}/content", "/v1/videos/{video_id}/remix",
            "/v1/videos/extensions"} <= set(paths)  # fmt: skip
    assert "multipart/form-data" in paths["/v1/videos"]["post"]["requestBody"]["content"]


def test_schemathesis_finds_no_server_errors(tmp_path):
    with running(tmp_path, "--max-queue", "5") as s:
        r = subprocess.run([str(Path(sys.executable).with_name("st")), "run", s.url + "/openapi.json", "--checks",
                            "not_a_server_error", "--max-examples", "25", "--request-timeout", "20",
                            "--generation-deterministic"],
                           capture_output=True, text=True, timeout=400)  # fmt: skip
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_the_web_page_generates_and_plays_a_video(tmp_path):
    from playwright.sync_api import sync_playwright

    artifacts = Path(__file__).resolve().parents[1] / "outputs" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    with running(tmp_path) as s, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(s.url + "/")
            assert page.locator("#aspect").input_value() == "9:16"
            page.fill("#prompt", "a red ball bounces on a gray floor")
            page.select_option("#seconds", "1")
            page.fill("#steps", "4")
            page.fill("#negative", "a ball rolling right")  # sent with the form; a field the API refused would fail
            page.click("#submit")
            page.wait_for_function("document.getElementById('progress').value === 100", timeout=120_000)
            page.wait_for_function("(() => { const v = document.querySelector('#gallery video');"
                                   " return v && v.readyState >= 1 && v.duration > 0; })()", timeout=30_000)
            state = page.evaluate("(() => { const v = document.querySelector('#gallery video');"
                                  " return [v.readyState, v.duration, v.videoWidth, v.videoHeight]; })()")
            assert state[1] > 0.9 and state[2:] == [64, 112], state
            assert page.locator("#gallery a", has_text="download").count() == 1
            page.click("#gallery button.remix")  # the prompt comes back to be changed, the button says so
            assert page.locator("#prompt").input_value() == "a red ball bounces on a gray floor"
            assert page.locator("#submit").inner_text() == "Remix"
            page.fill("#prompt", "a blue ball bounces on a gray floor")
            page.fill("#steps", "12")
            page.click("#submit")
            page.wait_for_function("document.querySelectorAll('#gallery video').length === 2", timeout=120_000)
            page.wait_for_function("document.getElementById('status').textContent.startsWith('done')", timeout=60_000)
            assert page.locator("#submit").inner_text() == "Generate"
            assert page.locator("#gallery .card p").first.inner_text() == "a blue ball bounces on a gray floor"
            page.screenshot(path=str(artifacts / "serve_page.png"), full_page=True)
            for left in (1, 0):
                page.click("#gallery button.delete")
                page.wait_for_function(f"document.querySelectorAll('#gallery .card').length === {left}",
                                       timeout=10_000)  # fmt: skip
        finally:
            browser.close()
    assert (artifacts / "serve_page.png").stat().st_size > 1000
    assert np.array(Image.open(artifacts / "serve_page.png")).std() > 5  # not a blank page


def test_a_remix_edits_from_the_source_videos_own_prompt():
    """A remix is FlowEdit from what the source video was made from to the new prompt (strength 0.8 unless asked)."""
    source = create_job({"prompt": "a red ball rolls left", "seconds": "1"}, Limits())
    remix = create_job({"prompt": "a blue ball rolls left"}, Limits(), "remix", source)
    assert remix.params["source_prompt"] == "a red ball rolls left" and remix.params["strength"] == 0.8
    assert create_job({"prompt": "x", "strength": 0.5}, Limits(), "remix", source).params["strength"] == 0.5
    assert create_job({"prompt": "x", "negative": " a green ball "}, Limits(), "remix", source).params["negative"] \
        == "a green ball" and source.params["negative"] == ""
