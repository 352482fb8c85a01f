// Torch's own words (errors, warnings) quoted as code, with an explanation in the reader's
// language for the messages the lessons meet.

import { el } from "./dom.js";

// message pattern -> i18n key of its explanation
const KNOWN = [
  [/\.grad attribute of a Tensor that is not a leaf Tensor is being accessed/, "torch.nonLeafGrad"],
  [
    /a leaf Variable that requires grad is (being )?used in an in-place operation/,
    "torch.inplaceLeaf",
  ],
  [/modified by an inplace operation/, "torch.inplaceSaved"],
  [/backward through the graph a second time/, "torch.backwardTwice"],
  [/shapes cannot be multiplied/, "torch.matmulShapes"],
  [/does not require grad and does not have a grad_fn/, "torch.noGradFn"],
  [/grad can be implicitly created only for scalar outputs/, "torch.scalarOnly"],
  [/index \S+ is out of bounds/, "torch.indexOutOfBounds"],
];

/** The i18n key explaining a torch message, or null. */
export function explanationKey(message) {
  const found = KNOWN.find(([pattern]) => pattern.test(message ?? ""));
  return found ? found[1] : null;
}

/** Nodes for "<frame text> <code>message</code> explanation", the frame already translated. */
export function quotedMessage(frame, message, t) {
  const key = explanationKey(message);
  const explained = key ? t(key) : key;
  const parts = [frame, " ", el("code", { class: "torch-message", lang: "en" }, message)];
  if (explained && explained !== key)
    parts.push(" ", el("span", { class: "explained" }, explained));
  return parts;
}

/** Nodes for a program's error: where, in the reader's language, then torch's message quoted.
 * An error of a backward pass names the pass and, given the graph, the tensor it started from. */
export function errorText(error, t, graph = null) {
  const line = error.line ?? "?";
  if (error.pass_index === null || error.pass_index === undefined) {
    return quotedMessage(t("errorAtLine", { type: error.type, line }), error.message, t);
  }
  const roots = (error.roots ?? [])
    .map((id) => graph?.nodes.find((n) => n.id === id))
    .filter(Boolean);
  const root = roots.map((n) => n.name ?? n.label).join(", ");
  const frame = root
    ? t("errorInPassFrom", { type: error.type, n: error.pass_index + 1, root, line })
    : t("errorInPass", { type: error.type, n: error.pass_index + 1, line });
  return quotedMessage(frame, error.message, t);
}
