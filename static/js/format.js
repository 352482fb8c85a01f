// Short text for recorded values: numbers, small lists, or statistics.

export function formatNumber(value) {
  if (typeof value === "string") return value; // "NaN", "Infinity"
  if (typeof value === "boolean") return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

function flatten(values, out = []) {
  if (Array.isArray(values)) values.forEach((v) => flatten(v, out));
  else out.push(values);
  return out;
}

export function formatData(data, maxItems = 4) {
  if (!data) return "None";
  if (data.values !== null && data.values !== undefined) {
    if (!Array.isArray(data.values)) return formatNumber(data.values);
    const flat = flatten(data.values);
    const shown = flat.slice(0, maxItems).map(formatNumber).join(", ");
    return `[${shown}${flat.length > maxItems ? ", …" : ""}]`;
  }
  if (data.stats) return `μ ${formatNumber(data.stats.mean)} σ ${formatNumber(data.stats.std)}`;
  return `${data.shape.join("×")}`;
}

export function shapeText(shape) {
  return shape.length ? shape.join("×") : "scalar";
}
