// The curves of a training loop, read off the recording: loss and parameters per pass, and
// every one-element .grad after each pass (gradient accumulation shows as a rising line).

function scalar(data) {
  if (!data || data.values === null || data.values === undefined) return null;
  let value = data.values;
  while (Array.isArray(value) && value.length === 1) value = value[0];
  return typeof value === "number" ? value : null;
}

export function trainingSeries(graph) {
  if (!graph) return [];
  const series = [...graph.series];
  const passes = graph.backward.filter((record) => record.kind === "backward");
  if (passes.length < 2) return series;
  const leaves = graph.nodes.filter(
    (n) => n.kind === "tensor" && n.is_leaf && n.requires_grad && n.name,
  );
  for (const leaf of leaves) {
    const values = passes.map((record) => scalar(record.grads[leaf.id]));
    if (values.every((v) => v === null)) continue;
    series.push({ name: `${leaf.name}.grad`, kind: "grad", values });
  }
  return series;
}
