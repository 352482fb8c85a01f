// The device picker: which devices the server has (GET /api/v1/devices), shown on its options.
import { devices } from "./api.js";

const GIB = 2 ** 30;

function describe(device) {
  const memory = device.total_memory_bytes
    ? `${(device.total_memory_bytes / GIB).toFixed(1)} GiB`
    : "";
  return [device.id, device.name, memory].filter(Boolean).join(" · ");
}

// Titles each option with the devices it stands for; disables CUDA where the server has none.
export async function describeDevices(select, { noCuda = "no CUDA device on this server" } = {}) {
  const listing = await devices().catch(() => null);
  if (!listing) return null;
  const cpu = listing.devices.filter((d) => d.kind === "cpu");
  const gpus = listing.devices.filter((d) => d.kind === "cuda");
  const option = (value) => select.querySelector(`option[value="${value}"]`);
  option("cpu").title = cpu.map(describe).join("\n");
  option("cuda").disabled = !listing.cuda;
  option("cuda").title = gpus.length ? gpus.map(describe).join("\n") : noCuda;
  option("auto").title = (gpus.length ? gpus : cpu).map(describe).join("\n");
  select.dataset.devices = listing.devices.map((d) => d.id).join(" ");
  return listing;
}
