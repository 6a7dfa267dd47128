"""The dataset browser in headless Chromium against a real `pixcrawler serve`: from the printed sign-in address
to a validated dataset downloaded from the page, with no curl in between; plus what a user sees when a token is
bad or a form is refused. Screenshots of the main screens at 1280 and 390 pixels land in build/screenshots/."""

from __future__ import annotations

import re
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from sqlalchemy import create_engine, text

from pixcrawler_local import samples, tokens
from pixcrawler_local.httphost import HttpHost, Response
from pixcrawler_local.stack import load_secrets
from tests.e2e import oidc
from tests.e2e.conftest import fresh_env
from tests.e2e.oidc import Provider
from tests.e2e.test_serve import serving

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 60_000
SLOW_SECONDS = 12.0
SIGN_IN = re.compile(r"(http://\S+/v1/app)#token=(\S+)")
expect.set_options(timeout=TIMEOUT_MS)  # jobs run on a loaded machine: wait for them as for any element


@dataclass
class Stack:
    api: str
    app: str
    """The address `serve` printed: the page, signed in."""
    urls: list[str]
    """The URL list to crawl: 5 pictures, a smaller re-encoded copy of the first, a 24 px one, a missing one."""
    data_dir: Path
    slow_url: str
    """A picture whose host takes several seconds to answer: its crawl is still running when a test cancels it."""

    def expire_links(self) -> None:
        """Move every export's link expiry into the past, in the stack's own embedded PostgreSQL (its socket is
        where the server's postmaster.pid says)."""
        lines = (self.data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
        port, socket_dir = lines[3].strip(), lines[4].strip()
        engine = create_engine(f"postgresql+pg8000://postgres@/postgres?unix_sock={socket_dir}/.s.PGSQL.{port}")
        try:
            with engine.begin() as connection:
                connection.execute(text("UPDATE export_jobs SET expires_at = now() - interval '1 minute'"))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One `serve` (and one loopback image host) for the module, as a user starts it."""
    root = tmp_path_factory.mktemp("browser")
    jpeg = {"Content-Type": "image/jpeg"}
    with HttpHost() as images:
        for seed in range(5):
            images.routes[f"/{seed}.jpg"] = Response(samples.jpeg(seed, 320, 240), headers=jpeg)
        copy = samples.encode(samples.picture(0, 320, 240).resize((288, 216)), "JPEG", quality=60)
        images.routes["/copy.jpg"] = Response(copy, headers=jpeg)
        images.routes["/tiny.jpg"] = Response(samples.jpeg(9, 24, 24), headers=jpeg)
        images.routes["/slow.jpg"] = Response(samples.jpeg(11), headers=jpeg, delay=SLOW_SECONDS)
        names = [*(f"{seed}.jpg" for seed in range(5)), "copy.jpg", "tiny.jpg", "missing.jpg"]
        with serving(root / "state", fresh_env(root / "home"), root) as state:
            printed = _printed_address(root / "serve.log")
            assert printed.group(1) == f"{state['api_url']}/v1/app"
            urls = [images.url(f"/{name}") for name in names]
            yield Stack(state["api_url"], printed.group(0), urls, root / "state", images.url("/slow.jpg"))


def _printed_address(log: Path) -> re.Match[str]:
    """The sign-in address `serve` prints just after it writes its state file."""
    deadline = time.monotonic() + 30
    while not (printed := SIGN_IN.search(log.read_text())):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return printed


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab at desktop width; a Content-Security-Policy violation or a script error fails the test."""
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("console", lambda message: _note_violation(message, problems))
    yield tab
    context.close()
    assert problems == []


def _note_violation(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        problems.append(message.text)


def shot(tab: Page, name: str, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = tab.viewport_size["width"] if tab.viewport_size else 0
    tab.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=full_page)


def test_from_the_printed_address_to_a_downloaded_validated_dataset(
    stack: Stack, page: Page, browser: Browser, tmp_path: Path
) -> None:
    page.goto(stack.app)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    assert "token" not in page.url  # moved out of the address bar (and its history) into this tab's storage
    assert page.evaluate("sessionStorage.getItem('pixcrawler.token')")
    expect(page.locator("#who-email")).to_have_text("you@example.com")

    page.get_by_label("Name", exact=True).fill("Birds")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Birds", exact=True)).to_be_visible()

    page.get_by_label("Job name").fill("garden birds")
    page.get_by_label("Keywords").fill("birds")
    page.get_by_label("A list of URLs").check()
    page.get_by_label("Image URLs, one a line").fill("\n".join(stack.urls))
    page.get_by_label("Most images").fill("20")
    page.get_by_role("button", name="Start crawl").click()

    page.wait_for_url(re.compile(r"#/jobs/\d+$"))
    job_id = page.url.rsplit("/", 1)[1]
    progress = page.get_by_role("region", name="Crawl progress")
    expect(progress.locator(".badge")).to_have_text("completed")
    expect(progress).to_contain_text("7 of at most 20")
    expect(progress).to_contain_text("1 HTTP error status")  # the missing image, refused in words
    grid = page.get_by_role("list", name="Images")
    expect(grid.locator("li.image")).to_have_count(7)
    sources = grid.locator("li.image img").evaluate_all("images => images.map(image => image.src)")
    previews = [source for source in sources if ".thumb." in source]  # never the originals...
    assert (len(sources), len(previews)) == (7, 6)  # ...but the 24 px one, which is its own thumbnail
    shot(page, "job")

    rules = page.get_by_role("form", name="Validate")
    rules.get_by_text("Rules").click()
    rules.get_by_label("Min width").fill("64")
    rules.screenshot(path=str(SCREENSHOTS / "rules-1280.png"))
    rules.get_by_role("button", name="Start validation").click()
    validation = page.locator("[data-validation-id]")
    expect(validation.locator(".badge")).to_have_text("completed")
    expect(validation).to_contain_text("7 images of 7 checked: 5 valid, 2 invalid")

    page.get_by_label("Validity").select_option("invalid")
    invalid = grid.locator("li.image")
    expect(invalid).to_have_count(2)
    expect(grid).to_contain_text("width 24")  # the planted 24 px image and its reason
    expect(grid).to_contain_text("near duplicate of image")
    duplicate = grid.locator("li.image", has=page.locator(".kept"))
    expect(duplicate.locator(".kept img")).to_be_visible()  # shown beside the image kept in its place
    shot(page, "invalid")

    duplicate.get_by_role("button", name=re.compile("^Open kept image")).click()
    viewer = page.locator("dialog#viewer")
    expect(viewer.locator("img.full")).to_be_visible()
    assert ".thumb." not in (viewer.locator("img.full").get_attribute("src") or "")  # full size on click
    shot(page, "viewer", full_page=False)  # the modal over what is on screen
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    export = page.get_by_role("form", name="Export")
    export.get_by_label("Format", exact=True).select_option("tar.gz")
    export.get_by_text("Options:").click()
    export.screenshot(path=str(SCREENSHOTS / "export-options-1280.png"))
    export.get_by_role("button", name="Start export").click()
    row = page.locator("[data-export-id]")
    expect(row.locator(".badge")).to_have_text("completed")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile("^Download")).click()
    archive = tmp_path / download.value.suggested_filename
    download.value.save_as(archive)
    with tarfile.open(archive) as bundle:
        members = bundle.getnames()
    assert sum(name.endswith(".jpg") for name in members) == 5, members  # only the valid images
    assert {"ATTRIBUTION.txt", "croissant.json", "manifest.csv"} <= {Path(name).name for name in members}
    shot(page, "exported")

    stack.expire_links()
    page.reload()
    row = page.locator("[data-export-id]")
    expect(row).to_contain_text("The download link has expired.")
    expect(row.get_by_role("link", name=re.compile("^Download"))).to_have_count(0)  # no dead link offered
    row.get_by_role("button", name="Issue a new link").click()
    with page.expect_download() as again:
        row.get_by_role("link", name=re.compile("^Download")).click()
    assert Path(again.value.path()).read_bytes() == archive.read_bytes()

    page.get_by_label("Validity").select_option("invalid")
    tiny = grid.locator("li.image", has_text="width 24")
    page.once("dialog", lambda dialog: dialog.accept())  # "Delete ...? Its files are removed too."
    tiny.get_by_role("button", name="Delete").click()
    expect(grid.locator("li.image")).to_have_count(1)
    page.reload()
    page.get_by_label("Validity").select_option("invalid")
    expect(grid.locator("li.image")).to_have_count(1)  # gone from the API too, not only from the page

    page.get_by_role("link", name="Activity").click()
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("image.deleted")  # newest first
    shot(page, "activity")

    page.get_by_role("link", name="Projects").click()
    expect(page.get_by_role("link", name="Birds")).to_be_visible()
    shot(page, "projects")

    phone = browser.new_context(viewport=PHONE)
    small = phone.new_page()
    small.set_default_timeout(TIMEOUT_MS)
    small.goto(stack.app)
    expect(small.get_by_role("link", name="Birds")).to_be_visible()
    shot(small, "projects")
    small.get_by_role("link", name="Activity").click()
    expect(small.locator("tbody tr").first).to_contain_text("image.deleted")
    shot(small, "activity")
    small.goto(f"{stack.api}/v1/app#/jobs/{job_id}")
    expect(small.get_by_role("list", name="Images").locator("li.image")).to_have_count(6)  # one was deleted
    expect(small.locator("[data-export-id] .badge")).to_have_text("completed")
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing wider than a phone
    shot(small, "job")
    phone.close()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('pixcrawler.token')") is None


def test_the_keyboard_reaches_every_control_with_a_visible_focus(stack: Stack, page: Page) -> None:
    page.goto(stack.app)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    reached = set()
    for _ in range(14):
        page.keyboard.press("Tab")
        name, outline = page.evaluate(
            "(() => { const e = document.activeElement; const s = getComputedStyle(e); return [e === document.body ?"
            " '' : `${e.tagName}:${e.name || e.textContent.trim()}`, `${s.outlineStyle} ${s.outlineWidth}`]; })()"
        )
        if name:  # the tab order may pass through the browser itself once
            assert outline == "solid 3px", (name, outline)
            reached.add(name)
    assert {"A:Skip to content", "A:Activity", "BUTTON:Sign out", "INPUT:name", "BUTTON:Create project"} <= reached


def test_a_bad_token_shows_the_api_message_and_a_sign_in_prompt(stack: Stack, page: Page) -> None:
    refusal = requests.get(f"{stack.api}/v1/me", headers={"Authorization": "Bearer nonsense"}, timeout=10)
    message = refusal.json()["error"]["message"]
    page.goto(f"{stack.api}/v1/app#token=nonsense")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("main .error")).to_have_text(message)
    expect(page.get_by_label("Token")).to_be_visible()
    shot(page, "sign-in")


def test_a_refused_form_shows_the_api_message_and_the_field(stack: Stack, page: Page) -> None:
    page.goto(stack.app)
    page.get_by_label("Name", exact=True).fill("Refusals")
    page.get_by_role("button", name="Create project").click()
    page.get_by_label("Job name").fill("no keywords")
    page.get_by_label("Keywords").fill(" , ,")  # the browser lets it through; the API refuses an empty list
    page.get_by_role("button", name="Start crawl").click()
    errors = page.get_by_role("form", name="Start a crawl").locator(".form-errors")
    expect(errors).to_contain_text("The request is not valid.")
    expect(errors).to_contain_text("keywords")
    shot(page, "refused-form")


def test_more_brings_the_rest_of_a_long_list_and_a_running_crawl_can_be_cancelled(stack: Stack, page: Page) -> None:
    """A user of their own (a token minted for the stack), so the lists hold exactly what this test made."""
    token = tokens.mint(load_secrets(stack.data_dir)["token_secret"], "pager@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    for number in range(52):
        name = {"name": f"p{number:02d}"}
        created = requests.post(f"{stack.api}/v1/projects", json=name, headers=headers, timeout=30)
        assert created.status_code == 201, created.text
    page.goto(f"{stack.api}/v1/app#token={token}")
    projects = page.get_by_role("region", name="Your projects").locator("li")
    expect(projects).to_have_count(50)
    page.get_by_role("button", name="More").click()
    expect(projects).to_have_count(52)
    expect(page.get_by_role("button", name="More")).to_be_hidden()

    page.get_by_role("link", name="Activity").click()
    rows = page.locator("main tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("project.created")
    page.get_by_role("button", name="More").click()
    expect(rows).to_have_count(52)
    expect(page.get_by_role("button", name="More")).to_be_hidden()

    page.get_by_role("link", name="Projects").click()
    projects.first.get_by_role("link").click()
    page.get_by_label("Job name").fill("slow host")
    page.get_by_label("Keywords").fill("slow")
    page.get_by_label("A list of URLs").check()
    page.get_by_label("Image URLs, one a line").fill(stack.slow_url)
    page.get_by_role("button", name="Start crawl").click()
    page.wait_for_url(re.compile(r"#/jobs/\d+$"))
    job_id = page.url.rsplit("/", 1)[1]
    progress = page.get_by_role("region", name="Crawl progress")
    page.get_by_role("button", name="Cancel crawl").click()
    expect(progress.locator(".badge")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel crawl")).to_be_hidden()
    job = requests.get(f"{stack.api}/v1/crawl-jobs/{job_id}", headers=headers, timeout=30).json()
    assert job["status"] == "cancelled"


@pytest.fixture(scope="module")
def oidc_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Provider]]:
    """A `serve` configured as a deployment is: its page signs in with an OIDC provider (a loopback one)."""
    root = tmp_path_factory.mktemp("oidc")
    data_dir = root / "state"
    with Provider(secret=lambda: load_secrets(data_dir)["token_secret"]) as provider:
        env = fresh_env(root / "home") | {
            "OIDC_AUTHORIZE_URL": f"{provider.url}/authorize",
            "OIDC_TOKEN_URL": f"{provider.url}/token",
            "OIDC_CLIENT_ID": oidc.CLIENT_ID,
            "OIDC_LOGOUT_URL": f"{provider.url}/logout",
        }
        with serving(data_dir, env, root) as state:
            yield state["api_url"], provider


def test_signing_in_and_out_with_an_oidc_provider_by_code_and_pkce(
    oidc_stack: tuple[str, Provider], page: Page
) -> None:
    api, provider = oidc_stack
    page.goto(f"{api}/v1/app")
    page.get_by_role("button", name="Sign in").click()  # to the provider, which sends the browser back with a code
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.locator("#who-email")).to_have_text(oidc.EMAIL)  # the provider's token reached the API
    assert page.url == f"{api}/v1/app#/"  # the code and state are gone from the address
    [(_, asked)] = [entry for entry in provider.seen if entry[0] == "/authorize"]
    assert asked["redirect_uri"] == f"{api}/v1/app" and asked["scope"] == "openid email"
    assert len(provider.exchanged) == 1  # its verifier matched the S256 challenge
    shot(page, "oidc-signed-in")

    page.get_by_role("button", name="Sign out").click()  # through the provider's logout, back to the page
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('pixcrawler.token')") is None
    [(_, logout)] = [entry for entry in provider.seen if entry[0] == "/logout"]
    assert logout == {"client_id": oidc.CLIENT_ID, "logout_uri": f"{api}/v1/app"}
