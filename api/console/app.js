// The console's entry point: the key, the model pickers and the error banner; the two panels do the rest.

import { apiKey, listModels } from "./api.js";
import { Batches } from "./batch.js";
import { SingleImage } from "./recognize.js";

const $ = (id) => document.getElementById(id);

/** Shows the API's own message (never a blank page); null clears it. */
function showError(err) {
  const banner = $("error");
  if (!err) {
    banner.hidden = true;
    return;
  }
  banner.replaceChildren();
  if (err.code) {
    const code = document.createElement("code");
    code.textContent = err.code;
    banner.append(code, " ");
  }
  banner.append(err.message || String(err));
  banner.hidden = false;
}

class Models {
  constructor() {
    this.byId = new Map();
  }

  async load() {
    const models = (await listModels()).map((m) => ({
      model_id: m.model_id,
      version: m.version ?? m.active_version ?? "",
      default_confidence_threshold: m.default_confidence_threshold ?? 0.5,
      min_label_count: m.min_label_count ?? 0,
    }));
    this.byId = new Map(models.map((m) => [m.model_id, m]));
    for (const id of ["model", "batch-model"]) {
      const select = $(id);
      const keep = select.value;
      select.replaceChildren(...models.map((m) => new Option(`${m.model_id} (v${m.version})`, m.model_id)));
      if (this.byId.has(keep)) select.value = keep;
    }
  }

  selected(selectId) {
    return this.byId.get($(selectId).value) || null;
  }
}

async function useKey(models) {
  const state = $("key-state");
  if (!apiKey.get()) {
    state.textContent = "no key yet";
    return;
  }
  try {
    await models.load();
    state.textContent = "key accepted";
    showError(null);
  } catch (err) {
    state.textContent = "";
    showError(err);
  }
}

function main() {
  const models = new Models();
  new SingleImage({ models, onError: showError });
  new Batches({ models, onError: showError });
  $("api-key").value = apiKey.get();
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    apiKey.set($("api-key").value);
    useKey(models);
  });
  window.addEventListener("unhandledrejection", (e) => showError(e.reason));
  useKey(models);
}

main();
