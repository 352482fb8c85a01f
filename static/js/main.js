// Entry point of the first page: load the gallery, run a program, list what was recorded.
import { getExample, listExamples, trace } from "./api.js";

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

function show(graph) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const label = (id) => byId.get(id)?.label ?? id;
  document.getElementById("forward").replaceChildren(
    ...graph.forward.map((s) => item(`line ${s.line ?? "?"}: ${s.call}(${s.inputs.map(label).join(", ")}) → ${s.outputs.map(label).join(", ")}`)),
  );
  document.getElementById("backward").replaceChildren(
    ...graph.backward.map((p) => item(`${p.kind}: ${p.steps.map((s) => byId.get(s.node)?.grad_fn).join(" → ")}`)),
  );
  document.getElementById("stdout").textContent = graph.stdout;
  const error = document.getElementById("error");
  error.hidden = !graph.error;
  error.textContent = graph.error ? `${graph.error.type} (line ${graph.error.line}): ${graph.error.message}` : "";
}

async function run() {
  const status = document.getElementById("status");
  status.textContent = "running…";
  try {
    show(await trace({ code: document.getElementById("editor").value }));
    status.textContent = "done";
  } catch (err) {
    status.textContent = err.message;
  }
}

async function start() {
  const gallery = document.getElementById("gallery");
  const examples = await listExamples();
  for (const e of examples) {
    const option = document.createElement("option");
    option.value = e.id;
    option.textContent = e.title_en;
    gallery.append(option);
  }
  const load = async (id) => {
    gallery.value = id;
    document.getElementById("editor").value = (await getExample(id)).code;
    await run();
  };
  gallery.addEventListener("change", () => load(gallery.value));
  document.getElementById("run").addEventListener("click", run);
  await load(document.querySelector("main").dataset.defaultExample);
}

start();
