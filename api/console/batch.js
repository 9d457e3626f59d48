// Batches: submit files (or a folder) or URLs, follow progress from the status endpoint, page through results.

import { call } from "./api.js";
import { colour } from "./recognize.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
const PAGE = 12;
const ENDED = new Set(["done", "failed", "partially_failed"]);

function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

export class Batches {
  constructor({ models, onError }) {
    this.models = models;
    this.onError = onError;
    this.previews = [];
    this.batchId = null;
    this.offset = 0;
    this.total = 0;
    $("batch-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    $("page-prev").addEventListener("click", () => this.page(Math.max(this.offset - PAGE, 0)));
    $("page-next").addEventListener("click", () => this.page(this.offset + PAGE));
  }

  async submit() {
    const model = this.models.selected("batch-model");
    if (!model) return this.onError(new Error("Enter an API key first: the model list comes from the API."));
    const files = [...$("batch-files").files, ...$("batch-folder").files].filter((f) => f.type.startsWith("image/"));
    const urls = $("batch-urls").value.split("\n").map((u) => u.trim()).filter(Boolean);
    if (!files.length && !urls.length) return this.onError(new Error("Choose images, a folder, or list image URLs."));
    const items = [
      ...(await Promise.all(files.map(async (f) => ({ image_data: await base64Of(f), model_id: model.model_id })))),
      ...urls.map((url) => ({ image_url: url, model_id: model.model_id })),
    ];
    this.previews = [...files.map((f) => URL.createObjectURL(f)), ...urls];
    try {
      const accepted = await call("/v1/recognize/batch", { method: "POST", json: { items } });
      this.onError(null);
      this.batchId = accepted.batch_id;
      this.offset = 0;
      $("batch-run").hidden = false;
      $("batch-id").textContent = accepted.batch_id;
      $("gallery").replaceChildren();
      document.querySelector(".pager").hidden = true;
      this.showRejected(accepted.rejected);
      this.poll();
    } catch (err) {
      this.onError(err);
    }
  }

  showRejected(rejected) {
    $("batch-rejected").replaceChildren(...rejected.map((r) => {
      const li = document.createElement("li");
      li.textContent = `item ${r.index}: ${r.code} — ${r.message}`;
      return li;
    }));
  }

  /** Progress from the status endpoint until the batch ends, then its first page of results. */
  async poll() {
    const batchId = this.batchId;
    try {
      const status = await call(`/v1/recognize/batch/${batchId}?limit=${PAGE}`);
      if (batchId !== this.batchId) return;  // a newer batch took over
      this.showStatus(status);
      if (ENDED.has(status.status)) this.showPage(status);
      else setTimeout(() => this.poll(), POLL_MS);
    } catch (err) {
      this.onError(err);
    }
  }

  showStatus(status) {
    const finished = status.completed_count + status.failed_count;
    this.total = status.total_count;
    $("batch-status").textContent = status.status;
    $("batch-status").dataset.status = status.status;
    $("batch-counts").textContent =
      `${status.completed_count} done, ${status.failed_count} failed of ${status.total_count}`;
    $("batch-progress").max = Math.max(status.total_count, 1);
    $("batch-progress").value = finished;
  }

  async page(offset) {
    try {
      const status = await call(`/v1/recognize/batch/${this.batchId}?offset=${offset}&limit=${PAGE}`);
      this.showPage(status);
    } catch (err) {
      this.onError(err);
    }
  }

  showPage(status) {
    this.offset = status.results.length ? status.results[0].index : 0;
    const first = status.results.length ? this.offset : 0;
    $("gallery").replaceChildren(...status.results.map((item) => this.tile(item)));
    const pager = document.querySelector(".pager");
    pager.hidden = status.total_count <= PAGE;
    $("page-info").textContent = `${first + 1}–${first + status.results.length} of ${status.total_count}`;
    $("page-prev").disabled = this.offset === 0;
    $("page-next").disabled = status.next_offset == null;
  }

  tile(item) {
    const figure = document.createElement("figure");
    figure.className = `tile ${item.status}`;
    figure.dataset.status = item.status;
    const src = this.previews[item.index];
    if (src && !item.error) {
      const img = document.createElement("img");
      img.src = src;
      img.alt = `item ${item.index}`;
      figure.append(img);
    }
    const caption = document.createElement("figcaption");
    if (item.error) {
      const code = document.createElement("code");
      code.className = "error-code";
      code.textContent = item.error.code;
      code.title = item.error.message;
      caption.append(`#${item.index} `, code);
    } else {
      const top = [...(item.labels || [])].sort((a, b) => b.score - a.score).slice(0, 3);
      caption.append(`#${item.index}${item.cache_hit ? " (cache hit)" : ""}`);
      for (const label of top) {
        const span = document.createElement("span");
        span.className = "chip";
        span.style.borderColor = colour(label.label);
        span.textContent = `${label.label} ${label.score.toFixed(2)}`;
        caption.append(span);
      }
    }
    figure.append(caption);
    return figure;
  }
}
