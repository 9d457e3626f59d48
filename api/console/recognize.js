// One image: send it once at threshold 0, then draw and re-filter the answer in the browser as the slider moves.

import { call } from "./api.js";
import { applyThreshold } from "./threshold.js";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

/** A stable colour per label name. */
export function colour(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 80% 45%)`;
}

function svgElement(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** Boxes with label and score over the image, in the image's own pixel coordinates. */
export function drawBoxes(svg, img, labels) {
  svg.replaceChildren();
  const w = img.naturalWidth || 1;
  const h = img.naturalHeight || 1;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const stroke = Math.max(2, Math.round(Math.max(w, h) / 250));
  const font = Math.max(12, Math.round(Math.max(w, h) / 28));
  for (const label of labels.filter((l) => l.bounding_box)) {
    const [x0, y0, x1, y1] = label.bounding_box;
    const c = colour(label.label);
    const g = svgElement("g", { class: "box", "data-label": label.label });
    g.append(svgElement("rect", {
      x: x0, y: y0, width: Math.max(x1 - x0, 1), height: Math.max(y1 - y0, 1),
      fill: "none", stroke: c, "stroke-width": stroke,
    }));
    const text = `${label.label} ${label.score.toFixed(2)}`;
    const ty = y0 > font + 4 ? y0 - 4 : y0 + font + 2;
    g.append(svgElement("rect", {
      x: x0, y: ty - font, width: text.length * font * 0.6 + 6, height: font + 4, fill: c, class: "tag",
    }));
    const t = svgElement("text", { x: x0 + 3, y: ty, "font-size": font, fill: "#fff" });
    t.textContent = text;
    g.append(t);
    svg.append(g);
  }
}

/** A ranked list of labels with score bars. */
export function listLabels(ol, labels) {
  ol.replaceChildren(...[...labels].sort((a, b) => b.score - a.score).map((label) => {
    const li = document.createElement("li");
    li.className = "label";
    li.dataset.label = label.label;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(label.score * 100).toFixed(1)}%`;
    bar.style.background = colour(label.label);
    const name = document.createElement("span");
    name.textContent = label.label;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = label.score.toFixed(3);
    li.append(bar, name, score);
    return li;
  }));
}

function showFacts(answer, applied, kept) {
  const rows = [
    ["model", `${answer.model_id} version ${answer.model_version}`],
    ["cache", answer.cache_hit ? "hit" : "miss"],
    ["labels", `${kept} of ${answer.labels.length} at threshold ${applied.toFixed(2)}`],
    ["request", answer.request_id],
  ];
  $("facts").replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dd.id = `fact-${k}`;
    return [dt, dd];
  }));
}

export class SingleImage {
  constructor({ models, onError }) {
    this.models = models;
    this.onError = onError;
    this.answer = null;
    this.model = null;
    $("threshold").addEventListener("input", () => this.render());
    $("file").addEventListener("change", (e) => e.target.files[0] && this.sendFile(e.target.files[0]));
    $("url-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const url = $("image-url").value.trim();
      if (url) this.send({ json: { image_url: url } }, url);
    });
    const drop = $("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/")) || e.dataTransfer.files[0];
      if (file) this.sendFile(file);
    });
  }

  sendFile(file) {
    const form = new FormData();
    form.append("file", file);
    this.send({ form }, URL.createObjectURL(file));
  }

  /** One request at threshold 0: every label the model gave, so the slider can re-filter without asking again. */
  async send(body, src) {
    const model = this.models.selected("model");
    if (!model) return this.onError(new Error("Enter an API key first: the model list comes from the API."));
    if (body.json) Object.assign(body.json, { model_id: model.model_id, confidence_threshold: 0 });
    else {
      body.form.append("model_id", model.model_id);
      body.form.append("confidence_threshold", "0");
    }
    $("answer").classList.add("busy");
    try {
      const answer = await call("/v1/recognize", { method: "POST", ...body });
      this.onError(null);
      this.model = model;
      this.answer = answer;
      $("threshold").value = model.default_confidence_threshold;
      const img = $("preview");
      await new Promise((resolve) => {
        img.onload = img.onerror = resolve;
        img.src = src;
      });
      $("answer").hidden = false;
      this.render();
    } catch (err) {
      this.onError(err);
    } finally {
      $("answer").classList.remove("busy");
    }
  }

  render() {
    if (!this.answer) return;
    const threshold = Number($("threshold").value);
    const { kept, applied } = applyThreshold(this.answer.labels, threshold, this.model.min_label_count);
    $("threshold-value").textContent = threshold.toFixed(2);
    $("threshold-note").textContent = applied < threshold
      ? `lowered to ${applied.toFixed(2)} so ${this.model.min_label_count} label(s) show` : "";
    drawBoxes($("boxes"), $("preview"), kept);
    listLabels($("labels"), kept);
    showFacts(this.answer, applied, kept.length);
  }
}
