// PixCrawler dataset browser: plain DOM, the public API on the same origin, nothing fetched from elsewhere
// except the OIDC provider's token endpoint. Every element is built with `el` (text, never HTML), so nothing a
// crawl stored can inject markup.

const CONFIG = JSON.parse(document.getElementById("config").textContent);
const API = location.pathname.replace(/\/app\/?$/, "");
const PAGE_URL = location.origin + location.pathname;
const TOKEN_KEY = "pixcrawler.token";
const PKCE_KEY = "pixcrawler.pkce";
const POLL_MS = 1500;
const ACTIVE = new Set(["pending", "running"]);

const main = document.getElementById("main");
const notice = document.getElementById("notice");
const viewer = document.getElementById("viewer");
let timers = [];
let screen = 0;
let schemas = null;

// ---------------------------------------------------------------- DOM helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  return fill(node, ...children);
}

/** Replace a node's children; nested arrays are flattened and null, undefined and false left out. */
function fill(node, ...children) {
  const kept = children.flat(Infinity).filter((child) => child !== undefined && child !== null && child !== false);
  node.replaceChildren(...kept.map((child) => (child instanceof Node ? child : document.createTextNode(String(child)))));
  return node;
}

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

function field(label, control, hint) {
  control.id ||= nextId("f");
  const hintNode = hint ? el("small", { id: `${control.id}-hint`, class: "hint" }, hint) : null;
  if (hintNode) control.setAttribute("aria-describedby", hintNode.id);
  return el("div", { class: "field" }, el("label", { for: control.id }, label), control, hintNode);
}

function checkbox(label, input, hint) {
  input.id ||= nextId("f");
  const hintNode = hint ? el("small", { id: `${input.id}-hint`, class: "hint" }, hint) : null;
  if (hintNode) input.setAttribute("aria-describedby", hintNode.id);
  return el("div", { class: "field check" }, input, el("label", { for: input.id }, label), hintNode);
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function badge(status) {
  return el("span", { class: `badge ${status}` }, status);
}

function progressBar(value, label) {
  return el("progress", { max: 100, value, "aria-label": label }, `${value}%`);
}

// ---------------------------------------------------------------- errors

class ApiError extends Error {
  constructor(status, message, details = []) {
    super(message);
    this.status = status;
    this.details = details;
  }
}

function errorBox(error) {
  const details = (error.details || []).map((d) => el("li", {}, d.field ? `${d.field}: ${d.message}` : d.message));
  return el("div", { class: "error" }, el("strong", {}, error.message), details.length ? el("ul", {}, details) : null);
}

function showNotice(error) {
  fill(notice, errorBox(error));
  notice.scrollIntoView({ block: "nearest" });
}

function clearNotice() {
  fill(notice);
}

window.addEventListener("unhandledrejection", (event) => fail(event.reason));
window.addEventListener("error", (event) => fail(event.error || new Error(event.message)));

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    signInScreen(error.message);
    return;
  }
  showNotice(error instanceof Error ? error : new Error(String(error)));
}

// ---------------------------------------------------------------- the API

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, `The API could not be reached (${error.message}).`);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    // the API's own shape, else the gateway's (its JWT authorizer answers {"message": "Unauthorized"})
    const error = data?.error || { message: data?.message || `The API answered HTTP ${response.status}.` };
    throw new ApiError(response.status, error.message, error.details || []);
  }
  return data;
}

async function openapi() {
  schemas ||= (await api("GET", "/openapi.json")).components.schemas;
  return schemas;
}

// ---------------------------------------------------------------- sign-in

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function startOidcSignIn() {
  const oidc = CONFIG.oidc;
  const verifier = randomString();
  const state = randomString();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: oidc.client_id,
    redirect_uri: PAGE_URL,
    scope: oidc.scopes,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  location.assign(`${oidc.authorize_url}?${query}`);
}

async function finishOidcSignIn(params) {
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, "", `${location.pathname}#/`);
  if (params.get("error")) throw new ApiError(401, `Sign-in failed: ${params.get("error_description") || params.get("error")}.`);
  if (!saved || saved.state !== params.get("state")) throw new ApiError(401, "Sign-in failed: the answer does not match the request this page made.");
  let response;
  try {
    response = await fetch(CONFIG.oidc.token_url, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: params.get("code"),
        redirect_uri: PAGE_URL,
        client_id: CONFIG.oidc.client_id,
        code_verifier: saved.verifier,
      }),
    });
  } catch (error) {
    throw new ApiError(401, `Sign-in failed: the identity provider could not be reached (${error.message}).`);
  }
  const tokens = await response.json().catch(() => ({}));
  // the ID token carries `email`; the gateway's authorizer accepts it (its audience is the client id)
  const jwt = tokens.id_token || tokens.access_token;
  if (!response.ok || !jwt) {
    throw new ApiError(401, `Sign-in failed: ${tokens.error_description || tokens.error || `HTTP ${response.status}`}.`);
  }
  sessionStorage.setItem(TOKEN_KEY, jwt);
}

function signInScreen(message) {
  stopPolling();
  clearNotice();
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const body = [el("h1", {}, "Sign in")];
  if (message) body.push(el("div", { class: "error", role: "alert" }, el("strong", {}, message)));
  if (CONFIG.oidc) {
    body.push(el("p", {}, "Sign in with your organisation's account to see your datasets."));
    body.push(el("button", { type: "button", onclick: () => startOidcSignIn().catch(fail) }, "Sign in"));
  } else {
    const input = el("input", { type: "password", name: "token", autocomplete: "off", required: true });
    body.push(
      el("p", {}, "On the local stack, open the address ", el("code", {}, "pixcrawler serve"), " printed: it signs you in. Or paste a token from ", el("code", {}, "pixcrawler token"), "."),
      el(
        "form",
        {
          class: "card",
          onsubmit: (event) => {
            event.preventDefault();
            sessionStorage.setItem(TOKEN_KEY, input.value.trim());
            route();
          },
        },
        field("Token", input),
        el("button", { type: "submit" }, "Sign in"),
      ),
    );
  }
  fill(main, ...body);
}

async function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (CONFIG.oidc?.logout_url) {
    const query = new URLSearchParams({ client_id: CONFIG.oidc.client_id, logout_uri: PAGE_URL });
    location.assign(`${CONFIG.oidc.logout_url}?${query}`);
    return;
  }
  signInScreen("You are signed out.");
}

document.getElementById("sign-out").addEventListener("click", () => signOut().catch(fail));

// ---------------------------------------------------------------- routing

function stopPolling() {
  timers.forEach(clearTimeout);
  timers = [];
  screen += 1;
}

/** Call `load` now and again every POLL_MS while it answers true (the thing is still running) and the screen
 * that started it is still shown. */
function poll(load) {
  const shown = screen;
  const tick = async () => {
    let again = false;
    try {
      again = await load();
    } catch (error) {
      fail(error);
    }
    if (again && shown === screen) timers.push(setTimeout(tick, POLL_MS));
  };
  return tick();
}

async function route() {
  stopPolling();
  clearNotice();
  if (!token()) {
    signInScreen();
    return;
  }
  document.getElementById("nav").hidden = false;
  const hash = location.hash.replace(/^#/, "") || "/";
  let match;
  try {
    if ((match = hash.match(/^\/projects\/(\d+)$/))) await projectScreen(Number(match[1]));
    else if ((match = hash.match(/^\/jobs\/(\d+)$/))) await jobScreen(Number(match[1]));
    else if (hash === "/activity") await activityScreen();
    else await projectsScreen();
    await whoAmI();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return fail(error);
    fill(main, el("h1", {}, "Something went wrong"), errorBox(error), el("p", {}, el("a", { href: "#/" }, "Back to projects")));
  }
}

async function whoAmI() {
  const me = await api("GET", "/me");
  document.getElementById("who-email").textContent = me.email;
  document.getElementById("who").hidden = false;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Submit a form's body through `send`; the API's message (and each field's, for a 422) shows in the form. */
function apiForm(attrs, children, send) {
  const errors = el("div", { class: "form-errors", role: "alert" });
  const submit = el("button", { type: "submit" }, attrs.submitLabel);
  const form = el("form", {
    class: "card",
    "aria-label": attrs.label,
    onsubmit: async (event) => {
      event.preventDefault();
      fill(errors);
      submit.disabled = true;
      try {
        await send(form);
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) fail(error);
        else fill(errors, errorBox(error));
      } finally {
        submit.disabled = false;
      }
    },
  }, el("h2", {}, attrs.label), children, errors, submit);
  return form;
}

/** A "More" button that appends the next page of a cursor-paginated list. */
function pager(path, render, container) {
  const more = el("button", { type: "button", class: "secondary", hidden: true }, "More");
  let cursor = null;
  const load = async () => {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ""}`);
    page.items.forEach((item) => container.append(render(item)));
    cursor = page.next_cursor || null;
    more.hidden = !cursor;
    return page;
  };
  more.addEventListener("click", () => load().catch(fail));
  return { more, load };
}

// ---------------------------------------------------------------- projects

async function projectsScreen() {
  const list = el("ul", { class: "list" });
  const { more, load } = pager("/projects?limit=50", (p) =>
    el("li", {}, el("a", { href: `#/projects/${p.id}` }, p.name), " ", badge(p.status), el("div", { class: "muted" }, [p.description, `created ${when(p.created_at)}`].filter(Boolean).join(" · "))), list);
  const name = el("input", { name: "name", required: true, maxlength: 200 });
  const description = el("textarea", { name: "description", rows: 2, maxlength: 5000 });
  const form = apiForm({ label: "New project", submitLabel: "Create project" }, [field("Name", name), field("Description", description, "Optional")], async () => {
    const project = await api("POST", "/projects", { name: name.value, description: description.value || null });
    go(`#/projects/${project.id}`);
  });
  fill(main, el("h1", {}, "Projects"), el("div", { class: "columns" }, el("section", { "aria-label": "Your projects" }, list, more), form));
  const page = await load();
  if (!page.items.length) list.append(el("li", { class: "muted" }, "No projects yet: create one."));
}

async function projectScreen(id) {
  const project = await api("GET", `/projects/${id}`);
  const rows = project.crawl_jobs.map((job) =>
    el("tr", {}, el("td", {}, el("a", { href: `#/jobs/${job.id}` }, job.name)), el("td", {}, badge(job.status)), el("td", {}, job.downloaded_images.toLocaleString()), el("td", {}, job.valid_images.toLocaleString()), el("td", {}, when(job.created_at))));
  const table = rows.length
    ? el("div", { class: "scroll" }, el("table", {}, el("caption", {}, `Crawl jobs (${project.crawl_job_count}, newest first)`), el("thead", {}, el("tr", {}, ["Name", "Status", "Images stored", "Valid", "Created"].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows)))
    : el("p", { class: "muted" }, "No crawl jobs yet: start one.");
  fill(main,
    el("p", { class: "crumbs" }, el("a", { href: "#/" }, "Projects"), " / ", project.name),
    el("h1", {}, project.name),
    project.description ? el("p", {}, project.description) : null,
    el("div", { class: "columns" }, el("section", { "aria-label": "Crawl jobs" }, table), crawlForm(project)),
  );
}

function crawlForm(project) {
  const name = el("input", { name: "name", required: true, maxlength: 200 });
  const keywords = el("input", { name: "keywords", required: true, placeholder: "cats, dogs" });
  const maxImages = el("input", { name: "max_images", type: "number", min: 1, max: 100000, value: 100, required: true });
  const search = el("input", { type: "radio", name: "source", value: "search", checked: true });
  const list = el("input", { type: "radio", name: "source", value: "urls" });
  const providers = ["openverse", "wikimedia"].map((p) => el("input", { type: "checkbox", name: "providers", value: p, checked: p === "openverse" }));
  const urls = el("textarea", { name: "urls", rows: 5, placeholder: "https://example.org/a.jpg" });
  const file = el("input", { type: "file", name: "urls_file", accept: ".txt,.csv,text/plain" });
  file.addEventListener("change", async () => {
    if (file.files[0]) urls.value = (urls.value ? `${urls.value}\n` : "") + (await file.files[0].text());
  });
  const robots = el("input", { type: "checkbox", name: "respect_robots", checked: true });
  const searchPart = el("fieldset", {}, el("legend", {}, "Providers"), providers.map((p) => checkbox(p.value, p)));
  const urlPart = el("div", { hidden: true }, field("Image URLs, one a line", urls), field("…or upload a list", file, "A text file of URLs, one a line"));
  const toggle = () => {
    searchPart.hidden = !search.checked;
    urlPart.hidden = search.checked;
  };
  search.addEventListener("change", toggle);
  list.addEventListener("change", toggle);
  return apiForm(
    { label: "Start a crawl", submitLabel: "Start crawl" },
    [
      field("Job name", name),
      field("Keywords", keywords, "Comma-separated; each image is labelled with the keyword it was found for (a URL list's images with the first)"),
      el("fieldset", { class: "inline" }, el("legend", {}, "Images from"), checkbox("Search providers", search), checkbox("A list of URLs", list)),
      searchPart,
      urlPart,
      field("Most images", maxImages),
      checkbox("Respect robots.txt", robots, "Turn off only for hosts you own"),
    ],
    async () => {
      const body = {
        name: name.value,
        keywords: keywords.value.split(",").map((k) => k.trim()).filter(Boolean),
        max_images: Number(maxImages.value),
        respect_robots: robots.checked,
      };
      if (search.checked) body.providers = providers.filter((p) => p.checked).map((p) => p.value);
      else {
        body.providers = ["urls"];
        body.urls = urls.value.split(/\s+/).map((u) => u.trim()).filter(Boolean);
      }
      const job = await api("POST", `/projects/${project.id}/crawl-jobs`, body);
      go(`#/jobs/${job.id}`);
    },
  );
}

// ---------------------------------------------------------------- a crawl job

async function jobScreen(id) {
  const job = await api("GET", `/crawl-jobs/${id}`);
  const project = await api("GET", `/projects/${job.project_id}`);
  const status = el("section", { class: "card", "aria-label": "Crawl progress" });
  const images = el("section", { "aria-labelledby": "images-title" });
  const validation = el("section", { "aria-labelledby": "validation-title" });
  const exports = el("section", { "aria-labelledby": "exports-title" });
  fill(main,
    el("p", { class: "crumbs" }, el("a", { href: "#/" }, "Projects"), " / ", el("a", { href: `#/projects/${project.id}` }, project.name), " / ", job.name),
    el("h1", {}, job.name),
    status,
    images,
    el("div", { class: "columns" }, validation, exports),
  );
  // a finished validation changes the crawl job's valid count and every image's verdict: show them again
  const validated = async () => {
    const current = await api("GET", `/crawl-jobs/${id}`);
    renderJobStatus(status, current);
    await imagesSection(images, current);
  };
  let wasActive = null;
  poll(async () => {
    const current = await api("GET", `/crawl-jobs/${id}`);
    renderJobStatus(status, current);
    const active = ACTIVE.has(current.status);
    if (wasActive !== active) {
      // the grid and the forms once at first, and again when the crawl ends (its images are all stored then)
      imagesSection(images, current);
      validationSection(validation, current, validated);
      exportSection(exports, current);
    }
    wasActive = active;
    return active;
  });
}

function stat(label, value) {
  return el("div", { class: "stat" }, el("dt", {}, label), el("dd", {}, value));
}

function renderJobStatus(container, job) {
  const actions = [];
  if (ACTIVE.has(job.status)) {
    actions.push(el("button", { type: "button", class: "secondary", onclick: () => api("POST", `/crawl-jobs/${job.id}/cancel`).then(route, fail) }, "Cancel crawl"));
  }
  if (job.failed_chunks > 0 && !ACTIVE.has(job.status)) {
    actions.push(el("button", { type: "button", class: "secondary", onclick: () => api("POST", `/crawl-jobs/${job.id}/retry`).then(route, fail) }, "Retry failed chunks"));
  }
  fill(container,
    el("h2", {}, "Crawl ", badge(job.status)),
    progressBar(job.progress, "Crawl progress"),
    el("dl", { class: "stats" },
      stat("Chunks", `${job.completed_chunks} of ${job.total_chunks} done${job.failed_chunks ? `, ${job.failed_chunks} failed` : ""}${job.active_chunks ? `, ${job.active_chunks} running` : ""}`),
      stat("Images stored", `${job.downloaded_images.toLocaleString()} of at most ${job.max_images.toLocaleString()}`),
      stat("Valid", job.valid_images.toLocaleString()),
      stat("Keywords", job.keywords.join(", ")),
      stat("Providers", job.providers.join(", ")),
      stat("Refused candidates", job.refused_summary || "none"),
    ),
    job.error_message ? el("div", { class: "error" }, el("strong", {}, "Error: "), job.error_message) : null,
    actions.length ? el("div", { class: "actions" }, actions) : null,
  );
}

// ---------------------------------------------------------------- images

function imagesSection(container, job) {
  // shown again (the crawl or a validation ended): keep the filters the user chose
  const chosen = (name) => container.querySelector(`select[name=${name}]`)?.value || "";
  const keyword = el("select", { name: "keyword" }, el("option", { value: "" }, "All keywords"), job.keywords.map((k) => el("option", { value: k, selected: k === chosen("keyword") }, k)));
  const validity = el("select", { name: "validity" }, [["", "All images"], ["valid", "Valid"], ["invalid", "Invalid"], ["unvalidated", "Not validated yet"]].map(([v, l]) => el("option", { value: v, selected: v === chosen("validity") }, l)));
  let grid = el("ul", { class: "grid", "aria-label": "Images" });
  const footer = el("div", { class: "actions" });
  const load = () => {
    // a fresh list for every filter: a slower answer to an earlier filter lands in the list it replaced
    const fresh = el("ul", { class: "grid", "aria-label": "Images" });
    grid.replaceWith(fresh);
    grid = fresh;
    const query = new URLSearchParams({ limit: "48" });
    if (keyword.value) query.set("keyword", keyword.value);
    if (validity.value) query.set("validity", validity.value);
    const { more, load: first } = pager(`/crawl-jobs/${job.id}/images?${query}`, imageCard, grid);
    fill(footer, more);
    return first().then((page) => {
      if (!page.items.length) fresh.append(el("li", { class: "muted empty" }, "No images match."));
    });
  };
  keyword.addEventListener("change", () => load().catch(fail));
  validity.addEventListener("change", () => load().catch(fail));
  fill(container,
    el("h2", { id: "images-title" }, "Images"),
    el("div", { class: "filters" }, field("Keyword", keyword), field("Validity", validity)),
    grid,
    footer,
  );
  return load().catch(fail);
}

function thumbnail(image, alt) {
  return image.thumbnail_url
    ? el("img", { src: image.thumbnail_url, alt, loading: "lazy", width: 256, height: 256 })
    : el("span", { class: "no-thumb" }, "no preview");
}

function imageCard(image) {
  const label = image.title || image.filename;
  const errors = image.validation_errors || [];
  const kept = errors.find((e) => e.duplicate_of);
  const card = el(
    "li",
    { class: `image ${image.is_valid === false ? "invalid" : ""}`, "data-image-id": image.id },
    el("button", { type: "button", class: "thumb", "aria-label": `Open ${label} full size`, onclick: () => openImage(image.id) }, thumbnail(image, label)),
    el("div", { class: "meta" },
      el("strong", { class: "title" }, label),
      image.is_valid === false ? el("span", { class: "badge failed" }, "invalid") : image.is_valid ? el("span", { class: "badge completed" }, "valid") : null,
      errors.length ? el("ul", { class: "reasons" }, errors.map((e) => el("li", {}, e.message))) : null,
      kept ? el("div", { class: "kept", "data-kept": kept.duplicate_of }, "Kept instead:") : null,
      el("div", { class: "muted" }, [image.keyword, image.width && `${image.width}×${image.height}`, bytes(image.file_size)].filter(Boolean).join(" · ")),
      el("div", { class: "muted" }, licence(image)),
      el("a", { href: image.source_url || image.original_url, rel: "noopener noreferrer", target: "_blank" }, "Source"),
    ),
    el("button", { type: "button", class: "danger small", onclick: () => deleteImage(image, card) }, `Delete`),
  );
  if (kept) showKept(card.querySelector(".kept"), kept.duplicate_of);
  return card;
}

function licence(image) {
  return [`Licence: ${image.license || "unknown"}`, image.creator && `by ${image.creator}`, image.provider && `via ${image.provider}`]
    .filter(Boolean)
    .join(" · ");
}

/** A near or exact duplicate is shown beside the image kept in its place. */
async function showKept(container, keptId) {
  try {
    const kept = await api("GET", `/images/${keptId}`);
    container.append(el("button", { type: "button", class: "thumb small", "aria-label": `Open kept image ${kept.title || kept.filename}`, onclick: () => openImage(kept.id) }, thumbnail(kept, `Kept image ${kept.id}`)));
  } catch (error) {
    container.append(` image ${keptId} (${error.message})`);
  }
}

async function deleteImage(image, card) {
  if (!confirm(`Delete ${image.title || image.filename}? Its files are removed too.`)) return;
  try {
    await api("DELETE", `/images/${image.id}`);
    card.remove();
  } catch (error) {
    fail(error);
  }
}

async function openImage(id) {
  const image = await api("GET", `/images/${id}`).catch((error) => (fail(error), null));
  if (!image) return;
  const close = el("button", { type: "button", class: "secondary", onclick: () => viewer.close() }, "Close");
  fill(viewer,
    el("h2", { id: "viewer-title" }, image.title || image.filename),
    el("img", { src: image.view_url, alt: image.title || image.filename, class: "full" }),
    el("p", {}, licence(image), image.license_url ? [" · ", el("a", { href: image.license_url, target: "_blank", rel: "noopener noreferrer" }, "licence terms")] : null),
    el("p", { class: "muted" }, `${image.width ?? "?"}×${image.height ?? "?"} ${image.format ?? ""} · ${bytes(image.file_size)} · from `, el("a", { href: image.original_url, target: "_blank", rel: "noopener noreferrer" }, image.original_url)),
    close,
  );
  viewer.showModal();
  close.focus();
}

// ---------------------------------------------------------------- forms from the OpenAPI document

/** A property's schema with references followed; the property's own default and description win. */
function resolve(schema) {
  if (schema.$ref) {
    const { $ref, ...own } = schema;
    return { ...resolve(schemas[$ref.split("/").pop()]), ...own };
  }
  const options = schema.anyOf?.filter((s) => s.type !== "null");
  if (options?.length === 1) return { ...schema, ...resolve(options[0]), anyOf: undefined, nullable: true };
  return schema;
}

function explain(schema, name) {
  const parts = [];
  if (schema.description) parts.push(schema.description);
  if (schema.default !== undefined && schema.default !== null) parts.push(`default ${JSON.stringify(schema.default)}`);
  else if (schema.nullable && schema.type !== "boolean" && schema.type !== "array") parts.push("default: none");
  if (schema.minimum !== undefined || schema.maximum !== undefined) parts.push(`${schema.minimum ?? schema.exclusiveMinimum ?? ""}–${schema.maximum ?? ""}`);
  return parts.join("; ") || name;
}

const labelOf = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

/** Controls for an object schema's properties; `read()` gives only the values set away from their default. */
function schemaFields(objectName, skip = []) {
  const object = schemas[objectName];
  const readers = [];
  const nodes = [];
  for (const [name, raw] of Object.entries(object.properties)) {
    if (skip.includes(name)) continue;
    const schema = resolve(raw);
    const hint = explain(schema, name);
    if (schema.type === "boolean" && !schema.nullable) {
      const input = el("input", { type: "checkbox", name, checked: schema.default === true });
      nodes.push(checkbox(labelOf(name), input, hint));
      readers.push(() => (input.checked !== schema.default ? [name, input.checked] : null));
    } else if (schema.type === "boolean") {
      const select = el("select", { name }, el("option", { value: "" }, "default"), el("option", { value: "true" }, "yes"), el("option", { value: "false" }, "no"));
      nodes.push(field(labelOf(name), select, hint));
      readers.push(() => (select.value ? [name, select.value === "true"] : null));
    } else if (schema.enum) {
      const select = el("select", { name }, schema.enum.map((v) => el("option", { value: v, selected: v === schema.default }, v)));
      nodes.push(field(labelOf(name), select, hint));
      readers.push(() => (select.value !== schema.default ? [name, select.value] : null));
    } else if (schema.type === "array" && schema.items) {
      const values = resolve(schema.items).enum || [];
      const boxes = values.map((v) => el("input", { type: "checkbox", name, value: v }));
      nodes.push(el("fieldset", { class: "inline" }, el("legend", {}, labelOf(name)), boxes.map((b) => checkbox(b.value, b)), el("small", { class: "hint" }, `${hint}; none ticked: any`)));
      readers.push(() => {
        const ticked = boxes.filter((b) => b.checked).map((b) => b.value);
        return ticked.length ? [name, ticked] : null;
      });
    } else if (schema.type === "object") {
      const input = el("input", { name, placeholder: "train=0.8, test=0.2" });
      nodes.push(field(labelOf(name), input, `${hint}. As name=fraction pairs`));
      readers.push(() => {
        if (!input.value.trim()) return null;
        const pairs = input.value.split(",").map((p) => p.split("=").map((s) => s.trim()));
        return [name, Object.fromEntries(pairs.map(([k, v]) => [k, Number(v)]))];
      });
    } else if (schema.type === "integer" || schema.type === "number") {
      const input = el("input", { type: "number", name, step: schema.type === "integer" ? 1 : "any", placeholder: schema.default ?? "" });
      nodes.push(field(labelOf(name), input, hint));
      readers.push(() => (input.value !== "" && Number(input.value) !== schema.default ? [name, Number(input.value)] : null));
    } else {
      const input = el("input", { name, placeholder: schema.default ?? "" });
      nodes.push(field(labelOf(name), input, hint));
      readers.push(() => (input.value !== "" ? [name, input.value] : null));
    }
  }
  return { nodes, read: () => Object.fromEntries(readers.map((r) => r()).filter(Boolean)) };
}

// ---------------------------------------------------------------- validation

async function validationSection(container, job, validated) {
  await openapi();
  const list = el("ul", { class: "list" });
  const jobs = pager(`/crawl-jobs/${job.id}/validation-jobs?limit=10`, (v) => validationRow(v, validated), list);
  const name = el("input", { name: "name", required: true, value: "validation", maxlength: 200 });
  const rules = schemaFields("ValidationRules");
  const form = apiForm(
    { label: "Validate", submitLabel: "Start validation" },
    [
      el("p", { class: "hint" }, "Every rule has a default: leave the form as it is to keep decodable images and drop duplicates."),
      field("Name", name),
      el("details", {}, el("summary", {}, "Rules"), rules.nodes),
    ],
    async () => {
      await api("POST", `/crawl-jobs/${job.id}/validation-jobs`, { name: name.value, rules: rules.read() });
      await validationSection(container, job, validated);
    },
  );
  fill(container, el("h2", { id: "validation-title" }, "Validation"), list, jobs.more, ACTIVE.has(job.status) ? el("p", { class: "muted" }, "Validation can start once the crawl has ended.") : form);
  await jobs.load();
}

function validationRow(v, validated) {
  const row = el("li", { class: "job", "data-validation-id": v.id });
  let wasActive = false;
  poll(async () => {
    const job = await api("GET", `/validation-jobs/${v.id}`);
    const valid = job.validated_images - job.invalid_images;
    fill(row,
      el("strong", {}, job.name), " ", badge(job.status),
      progressBar(job.progress, `Validation ${job.name} progress`),
      el("div", { class: "outcome" }, `${plural(job.validated_images, "image")} of ${job.total_images.toLocaleString()} checked: ${valid.toLocaleString()} valid, ${job.invalid_images.toLocaleString()} invalid`),
      job.error_message ? el("div", { class: "error" }, job.error_message) : null,
    );
    const active = ACTIVE.has(job.status);
    if (wasActive && !active) await validated();
    wasActive = active;
    return active;
  });
  return row;
}

// ---------------------------------------------------------------- export

async function exportSection(container, job) {
  await openapi();
  const list = el("ul", { class: "list" });
  const jobs = pager(`/export-jobs?crawl_job_id=${job.id}&limit=10`, (x) => exportRow(x), list);
  const name = el("input", { name: "name", required: true, value: job.name, maxlength: 200 });
  const format = schemaFields("ExportJobCreate", ["name", "options"]);
  const options = schemaFields("ExportOptions");
  const form = apiForm(
    { label: "Export", submitLabel: "Start export" },
    [field("Name", name), format.nodes, el("details", {}, el("summary", {}, "Options: layout, resizing, splits, link lifetime"), options.nodes)],
    async () => {
      await api("POST", `/crawl-jobs/${job.id}/export-jobs`, { name: name.value, ...format.read(), options: options.read() });
      await exportSection(container, job);
    },
  );
  fill(container, el("h2", { id: "exports-title" }, "Exports"), list, jobs.more, ACTIVE.has(job.status) ? el("p", { class: "muted" }, "Export can start once the crawl has ended.") : form);
  await jobs.load();
}

function exportRow(x) {
  const row = el("li", { class: "job", "data-export-id": x.id });
  const render = (job) => {
    const files = job.files.length ? job.files : [];
    const links = files.filter((f) => f.download_url).map((f) => el("li", {}, el("a", { href: f.download_url, download: f.name, class: "download" }, `Download ${f.name}`), ` (${bytes(f.size)})`));
    const reissue = job.link_expired
      ? el("button", { type: "button", class: "secondary", onclick: () => api("POST", `/export-jobs/${job.id}/download-url`).then(render, fail) }, "Issue a new link")
      : null;
    fill(row,
      el("strong", {}, job.name), " ", badge(job.status), ` ${job.format}`,
      progressBar(job.progress, `Export ${job.name} progress`),
      el("div", { class: "outcome" }, `${job.exported_images.toLocaleString()} of ${job.total_images.toLocaleString()} images${job.file_size ? ` · ${bytes(job.file_size)}` : ""}`),
      links.length ? el("ul", { class: "downloads" }, links) : null,
      job.expires_at && !job.link_expired ? el("div", { class: "muted" }, `Link valid until ${when(job.expires_at)}`) : null,
      job.link_expired ? el("div", { class: "muted" }, "The download link has expired.") : null,
      reissue,
      job.error_message ? el("div", { class: "error" }, job.error_message) : null,
    );
  };
  poll(async () => {
    const job = await api("GET", `/export-jobs/${x.id}`);
    render(job);
    return ACTIVE.has(job.status);
  });
  return row;
}

// ---------------------------------------------------------------- activity

async function activityScreen() {
  const body = el("tbody");
  const { more, load } = pager("/activity?limit=50", (a) =>
    el("tr", {}, el("td", {}, when(a.timestamp)), el("td", {}, a.action), el("td", {}, a.resource_type ? `${a.resource_type} ${a.resource_id ?? ""}` : ""), el("td", { class: "muted" }, Object.entries(a.metadata || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", "))), body);
  fill(main,
    el("h1", {}, "Activity"),
    el("div", { class: "scroll" }, el("table", {}, el("caption", {}, "Newest first"), el("thead", {}, el("tr", {}, ["When", "What", "On", "Details"].map((h) => el("th", { scope: "col" }, h)))), body)),
    more,
  );
  await load();
}

// ---------------------------------------------------------------- start

async function start() {
  window.addEventListener("hashchange", route);
  const tokenInAddress = location.hash.match(/^#token=([^&]+)/);
  if (tokenInAddress) {
    // a local sign-in link: keep the token for this tab only and take it out of the address bar and history
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(tokenInAddress[1]));
    history.replaceState(null, "", `${location.pathname}#/`);
  }
  const params = new URLSearchParams(location.search);
  if (CONFIG.oidc && (params.has("code") || params.has("error"))) await finishOidcSignIn(params);
  await route();
}

start().catch(fail);
