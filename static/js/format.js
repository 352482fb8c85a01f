// Numbers as torch prints them (precision 4, one shared mode per tensor), short value texts.

const PRECISION = 4;

function asNumber(value) {
  if (typeof value === "number") return value;
  if (value === "NaN" || value === "nan") return NaN;
  if (value === "Infinity" || value === "inf") return Infinity;
  if (value === "-Infinity" || value === "-inf") return -Infinity;
  return null;
}

function special(n) {
  if (Number.isNaN(n)) return "nan";
  if (n === Infinity) return "inf";
  if (n === -Infinity) return "-inf";
  return null;
}

// Whether an exact decimal expansion ("1.03125000…") lies halfway between the two texts that
// keep `digits` digits after its point, with an even digit last: JS rounds such a tie away from
// zero, Python's format (and so torch) to the even digit (1.03125 prints 1.0312).
function tieToEven(exact, digits) {
  const point = exact.indexOf(".");
  return /^50*$/.test(exact.slice(point + 1 + digits)) && Number(exact[point + digits]) % 2 === 0;
}

// Python's "{:.4f}". Digits past 100 never decide a tie here: a double of at least 1e-4 (fixed
// notation's smallest) has fewer after its point.
function fixed(n) {
  const exact = Math.abs(n).toFixed(100);
  if (!tieToEven(exact, PRECISION)) return n.toFixed(PRECISION);
  return `${n < 0 ? "-" : ""}${exact.slice(0, exact.indexOf(".") + 1 + PRECISION)}`;
}

// Python's "{:.4e}": two-digit exponent with a sign (1.2340e-05). A double near a tie but not on
// it differs from it long before its 100th significant digit.
function scientific(n) {
  const [exact, exactExponent] = Math.abs(n).toExponential(100).split("e");
  let [mantissa, exponent] = n.toExponential(PRECISION).split("e");
  if (tieToEven(exact, PRECISION)) {
    mantissa = `${n < 0 ? "-" : ""}${exact.slice(0, 2 + PRECISION)}`;
    exponent = exactExponent;
  }
  const e = Number(exponent);
  return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
}

export function isFloating(dtype) {
  return !dtype || /float|double|half|complex/.test(dtype);
}

// Each value as print(tensor) shows it: all values of one tensor share the same mode.
export function formatValues(values, floating = true) {
  const numbers = values.map(asNumber);
  if (numbers.some((n) => n === null)) return values.map(String);
  if (!floating) return numbers.map((n) => special(n) ?? String(Math.trunc(n)));
  const finite = numbers.filter(Number.isFinite).map(Math.abs);
  const nonzero = finite.filter((n) => n !== 0);
  const low = nonzero.length ? Math.min(...nonzero) : 0;
  const high = nonzero.length ? Math.max(...nonzero) : 0;
  const whole = finite.every((n) => Math.ceil(n) === n);
  const sci = nonzero.length > 0 && (high / low > 1000 || high > 1e8 || (!whole && low < 1e-4));
  const one = (n) => {
    if (sci) return scientific(n);
    return whole ? `${n.toFixed(0)}.` : fixed(n);
  };
  return numbers.map((n) => special(n) ?? one(n));
}

export function formatNumber(value, floating = true) {
  if (typeof value === "boolean") return String(value);
  return formatValues([value], floating)[0];
}

export function flatten(values, out = []) {
  if (Array.isArray(values)) values.forEach((v) => flatten(v, out));
  else out.push(values);
  return out;
}

export function formatData(data, maxItems = 3) {
  if (!data) return "None";
  const floating = isFloating(data.dtype);
  if (data.values !== null && data.values !== undefined) {
    if (!Array.isArray(data.values)) return formatNumber(data.values, floating);
    const flat = flatten(data.values);
    const shown = formatValues(flat, floating).slice(0, maxItems).join(", ");
    return `[${shown}${flat.length > maxItems ? ", …" : ""}]`;
  }
  if (data.stats) {
    const [mean, std] = formatValues([data.stats.mean, data.stats.std]);
    return `μ ${mean} σ ${std}`;
  }
  return `${data.shape.join("×")}`;
}

export function shapeText(shape) {
  return shape.length ? shape.join("×") : "scalar";
}
