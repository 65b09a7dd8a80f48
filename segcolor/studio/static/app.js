// segcolor routing studio: plain JavaScript, no dependencies, nothing fetched from outside.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { photos: [], current: null, region: null };

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = (response.headers.get("content-type") || "").includes("json")
    ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.detail) || response.statusText);
  return body;
}

// ---------------------------------------------------------------- upload queue
async function upload(files) {
  files = Array.from(files);
  if (!files.length) return;
  $("queue").hidden = false;
  $("queue-bar").max = files.length;
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    $("queue-bar").value = i;
    $("queue-text").textContent = `${i + 1} of ${files.length}: ${file.name}`;
    const entry = { name: file.name, id: null, failed: null };
    state.photos.push(entry);
    renderPhotos();
    try {
      const photo = await api(`/api/photos?name=${encodeURIComponent(file.name)}`, {
        method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
      });
      entry.id = photo.id;
      if (!state.current || i === 0) show(photo);
      showError("");
    } catch (err) {
      entry.failed = err.message;
      showError(err.message);
    }
    renderPhotos();
  }
  $("queue-bar").value = files.length;
  $("queue-text").textContent = `done: ${files.length} photo(s)`;
}

function renderPhotos() {
  const list = $("photos");
  list.replaceChildren();
  for (const entry of state.photos) {
    const li = document.createElement("li");
    li.textContent = entry.name + (entry.id || entry.failed ? "" : " …");
    if (entry.failed) { li.classList.add("failed"); li.title = entry.failed; }
    if (state.current && entry.id === state.current.id) li.classList.add("current");
    if (entry.id) li.onclick = async () => show(await api(`/api/photos/${entry.id}`));
    list.append(li);
  }
}

// ---------------------------------------------------------------- one photo
function imageUrl(photo, kind) {
  return `/api/photos/${photo.id}/${kind}.png?v=${photo.version}`;
}

function show(photo) {
  const changedPhoto = !state.current || state.current.id !== photo.id;
  state.current = photo;
  $("work").hidden = false;
  if (changedPhoto) {
    $("gray").src = imageUrl(photo, "gray");
    $("before-img").src = imageUrl(photo, "gray");
    state.region = null;
    $("region").hidden = true;
  }
  $("overlay").src = imageUrl(photo, "overlay");
  $("result").src = imageUrl(photo, "result");
  $("result").dataset.version = photo.version;
  $("summary").textContent = photo.summary;
  $("timing").textContent = photo.version > 1 ? `re-routed in ${photo.render_ms} ms` : "";
  $("dl-png").href = `/api/photos/${photo.id}/result.png?download=1`;
  $("dl-routing").href = `/api/photos/${photo.id}/routing.json`;
  $("dl-edits").href = `/api/photos/${photo.id}/edits.json`;
  $("vivid").value = photo.vividness;
  $("vivid-value").textContent = Number(photo.vividness).toFixed(2);
  const legend = $("legend");
  legend.replaceChildren();
  for (const c of photo.categories) {
    if (c.share_percent <= 0) continue;
    const li = document.createElement("li");
    const swatch = document.createElement("i");
    swatch.style.background = c.color;
    li.append(swatch, `${c.name} ${c.share_percent.toFixed(1)}%` +
      (c.expert !== c.name ? ` (colored by ${c.expert})` : ""));
    legend.append(li);
  }
  renderPhotos();
  if (state.region !== null) selectRegion(state.region);
}

async function clickOverlay(event) {
  const img = $("overlay");
  const box = img.getBoundingClientRect();
  const photo = state.current;
  const x = (event.clientX - box.left) / box.width * photo.width;
  const y = (event.clientY - box.top) / box.height * photo.height;
  const info = await api(`/api/photos/${photo.id}/regions/at?x=${x}&y=${y}`);
  if (info.id === null) { showError("no listed region there (a crumb of background)"); return; }
  showError("");
  state.region = info.id;
  renderRegion(info);
}

async function selectRegion(id) {
  renderRegion(await api(`/api/photos/${state.current.id}/regions/${id}`));
}

function renderRegion(info) {
  const photo = state.current;
  $("region").hidden = false;
  $("r-id").textContent = `#${info.id}`;
  const select = $("r-category");
  select.replaceChildren(...photo.categories.map((c) => new Option(c.name, c.name)));
  select.value = info.category_now;
  $("r-was").textContent = info.reassigned ? `(router said ${info.category})` : "";
  $("r-classes").textContent = info.classes.join(", ") || "–";
  $("r-confidence").textContent = info.confidence.toFixed(3);
  $("r-area").textContent = `${info.area_percent}% of the photo`;
  const profile = $("r-profile");
  if (info.profile) {
    profile.disabled = false;
    profile.replaceChildren(new Option("auto (classifier)", ""),
      ...info.profile.variants.map((v) => new Option(v, v)));
    profile.value = info.profile.pinned || "";
    const probs = Object.entries(info.profile.profile_probabilities)
      .sort((a, b) => b[1] - a[1]).map(([k, p]) => `${k} ${(p * 100).toFixed(0)}%`);
    $("r-pprob").textContent = `P: ${probs.join(", ")}`;
  } else {
    profile.disabled = true;
    profile.replaceChildren(new Option("– (one expert)", ""));
    $("r-pprob").textContent = "";
  }
  const colors = $("r-colors");
  colors.replaceChildren();
  for (const c of info.dominant_colors.colors) {
    const s = document.createElement("span");
    s.className = "swatch";
    s.style.background = c.hex;
    s.title = `${c.hex} ${c.percent}%`;
    colors.append(s);
  }
  state.regionInfo = info;
}

async function putEdits(edits) {
  try {
    const photo = await api(`/api/photos/${state.current.id}/edits`, {
      method: "PUT", body: JSON.stringify(edits), headers: { "Content-Type": "application/json" },
    });
    showError("");
    show(photo);
  } catch (err) { showError(err.message); }
}

function currentEdits() {
  return JSON.parse(JSON.stringify(state.current.edits));
}

function changeCategory() {
  const edits = currentEdits();
  const region = state.region;
  edits.reassign = edits.reassign.filter((r) => r.region !== region);
  const category = $("r-category").value;
  if (category !== state.regionInfo.category) edits.reassign.push({ region, category });
  putEdits(edits);
}

function changeVividness() {
  const edits = currentEdits();
  edits.vividness = Number($("vivid").value);
  putEdits(edits);
}

function changeProfile() {
  const edits = currentEdits();
  const expert = state.regionInfo.expert_now;
  delete edits.profiles[expert];
  if ($("r-profile").value) edits.profiles[expert] = $("r-profile").value;
  putEdits(edits);
}

// ---------------------------------------------------------------- wiring
function wire() {
  const drop = $("drop");
  $("files").addEventListener("change", (e) => upload(e.target.files));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload(e.dataTransfer.files);
  });
  $("overlay").addEventListener("click", clickOverlay);
  $("r-category").addEventListener("change", changeCategory);
  $("r-profile").addEventListener("change", changeProfile);
  $("vivid").addEventListener("input", (e) => {
    $("vivid-value").textContent = Number(e.target.value).toFixed(2);
  });
  $("vivid").addEventListener("change", changeVividness);
  $("reset").addEventListener("click", () => putEdits({ version: 1 }));
  $("slider").addEventListener("input", (e) => {
    $("before").style.width = `${e.target.value}%`;
  });
  const fit = () => { $("before-img").style.width = `${$("result").clientWidth}px`; };
  $("result").addEventListener("load", fit);
  window.addEventListener("resize", fit);
}
wire();
