// What the graph shows at each position of the player, read off the server's recording.
// No DOM here: GraphView and Inspector draw what this returns.

export class Timeline {
  constructor(graph) {
    this.graph = graph;
    this.byId = new Map(graph.nodes.map((n) => [n.id, n]));
    this.producer = new Map(); // tensor id -> op id that output it (or AccumulateGrad for a leaf)
    this.consumers = new Map(); // tensor id -> [op ids]
    for (const edge of graph.edges) {
      const source = this.byId.get(edge.source);
      const target = this.byId.get(edge.target);
      if (source?.kind === "op" && target?.kind === "tensor")
        this.producer.set(target.id, source.id);
      if (source?.kind === "tensor" && target?.kind === "op") {
        if (!this.consumers.has(source.id)) this.consumers.set(source.id, []);
        this.consumers.get(source.id).push(target.id);
      }
    }
    this.outputsOf = new Map(); // op id -> [tensor ids it output]
    this.between = new Map(); // "producer|consumer" -> tensor id carrying the gradient back
    for (const [tensor, op] of this.producer) {
      if (!this.outputsOf.has(op)) this.outputsOf.set(op, []);
      this.outputsOf.get(op).push(tensor);
      for (const consumer of this.consumers.get(tensor) ?? [])
        this.between.set(`${op}|${consumer}`, tensor);
    }
    this.accumulatorOf = new Map(); // leaf id -> AccumulateGrad op id
    for (const node of graph.nodes)
      if (node.kind === "op" && node.variable) this.accumulatorOf.set(node.variable, node.id);
    this.forwardCount = graph.forward.length;
  }

  passCount() {
    return this.graph.backward.length;
  }

  // Positions of one play-through: the forward steps drawn, then the chosen pass's backward steps.
  // A layout of one pass (training loops) draws only that iteration's forward steps, and steps
  // inside one collapsed module box play as one step: one step per call of a visible box (a fold of
  // repeats is not merged: each of its steps plays, lighting the folded box).
  positions(pass, layout = null) {
    const drawn =
      layout && layout.pass_index !== null && layout.pass_index !== undefined
        ? layout.node_of
        : null;
    const groups = new Set(
      (layout?.nodes ?? [])
        .filter((n) => n.kind === "module" || n.kind === "line")
        .map((n) => n.id),
    );
    const boxOf = (id) => {
      const unit = layout?.node_of?.[id];
      return unit && groups.has(unit) ? unit : null;
    };
    const list = [];
    const add = (position, box) => {
      const last = list.at(-1);
      if (box && last && last.phase === position.phase && last.box === box)
        last.index = position.index;
      else list.push({ ...position, box });
    };
    // the call that raised after this pass's backward (a later iteration) plays after it
    const failed = this.graph.error?.node;
    const later = [];
    this.graph.forward.forEach((step, index) => {
      if (drawn && !(step.node in drawn)) return;
      if (step.node === failed && step.after_pass > pass) later.push(index);
      else add({ phase: "forward", pass, index }, boxOf(step.node));
    });
    const record = this.graph.backward[pass];
    if (record)
      record.steps.forEach((step, index) =>
        add({ phase: "backward", pass, index }, boxOf(step.node)),
      );
    for (const index of later) add({ phase: "forward", pass, index }, null);
    return list.map(({ box, ...position }) => position);
  }

  // The tensor that carries a gradient from consumer op back to producer op, if one was recorded.
  tensorBetween(producerOp, consumerOp) {
    const producer = this.byId.get(producerOp);
    if (producer?.variable) return producer.variable;
    return this.between.get(`${producerOp}|${consumerOp}`) ?? null;
  }

  state(position) {
    const active = new Set();
    const current = new Set();
    const values = new Map(); // tensor id -> TensorData shown on the node
    const grads = new Map(); // tensor id -> {total, parts: [TensorData], accumulated}
    const ranOps = new Set();
    const flows = []; // gradients leaving the current op: {from, to, tensor, grad}
    let line = null;
    const graph = this.graph;
    const pass = position?.pass ?? 0;
    const addTensor = (id) => {
      active.add(id);
      const node = this.byId.get(id);
      if (node?.kind === "tensor") values.set(id, node.value);
      const acc = this.accumulatorOf.get(id);
      if (acc) active.add(acc);
    };
    const badges = this.badgesAt(position);
    if (!position) return { active, current, values, grads, ranOps, flows, line, position, badges };
    const lastForward = position.phase === "forward" ? position.index : this.forwardCount - 1;
    for (let i = 0; i <= lastForward; i += 1) {
      const step = graph.forward[i];
      step.inputs.forEach(addTensor);
      step.nodes.forEach((id) => active.add(id));
      active.add(step.node);
      step.outputs.forEach(addTensor);
      if (position.phase === "forward" && i === position.index) {
        step.nodes.forEach((id) => current.add(id));
        current.add(step.node);
        step.outputs.forEach((id) => current.add(id));
        line = step.line;
      }
    }
    if (position.phase === "backward") {
      for (const node of graph.nodes) {
        if (
          node.kind === "op" &&
          node.created_by_pass !== null &&
          node.created_by_pass !== undefined &&
          node.created_by_pass < pass
        )
          active.add(node.id);
      }
      const record = graph.backward[pass];
      record.root.forEach(addTensor);
      record.inputs.forEach(addTensor);
      for (let i = 0; i <= position.index && i < record.steps.length; i += 1) {
        const step = record.steps[i];
        const op = this.byId.get(step.node);
        ranOps.add(step.node);
        active.add(step.node);
        (op.next ?? []).forEach((producer, k) => {
          const grad = step.grad_inputs[k];
          if (!producer || !grad) return;
          const tensor = this.tensorBetween(producer, step.node);
          if (tensor) {
            if (!grads.has(tensor))
              grads.set(tensor, { total: null, parts: [], accumulated: null });
            grads.get(tensor).parts.push(grad);
          }
          if (i === position.index) flows.push({ from: step.node, to: producer, tensor, grad });
        });
        for (const tensor of this.outputsOf.get(step.node) ?? []) {
          const entry = grads.get(tensor) ?? { total: null, parts: [], accumulated: null };
          entry.total = record.tensor_grads[tensor] ?? entry.total;
          if (op.variable === tensor) {
            entry.total = step.grad_outputs[0] ?? entry.total;
            entry.accumulated = record.grads[tensor] ?? null;
          }
          grads.set(tensor, entry);
        }
        if (i === position.index) {
          current.add(step.node);
          line = op.line ?? null;
        }
      }
      if (position.index >= record.steps.length - 1) {
        // autograd.grad runs no AccumulateGrad: its returned gradients are the totals.
        for (const [tensor, grad] of Object.entries(record.results ?? {})) {
          const entry = grads.get(tensor) ?? { total: null, parts: [], accumulated: null };
          entry.total = grad;
          grads.set(tensor, entry);
        }
      }
      for (const root of record.root) {
        if (!grads.has(root) && record.tensor_grads[root])
          grads.set(root, { total: record.tensor_grads[root], parts: [], accumulated: null });
      }
    }
    return { active, current, values, grads, ranOps, flows, line, position, badges };
  }

  // Badge texts at a position, as the server computed them for the page and the exports alike:
  // a tensor keeps its value once computed (leaves from the start); going backward, its
  // gradient shows under its value (app/badges.py badges_at).
  badgesAt(position) {
    const track = this.graph.badges;
    const badges = new Map();
    if (!position || !track) return badges;
    const lastForward = position.phase === "forward" ? position.index : track.forward.length - 1;
    for (const texts of track.forward.slice(0, lastForward + 1)) {
      for (const [id, text] of Object.entries(texts)) badges.set(id, text);
    }
    if (position.phase === "forward") return badges;
    const gradients = new Map();
    for (const texts of (track.backward[position.pass] ?? []).slice(0, position.index + 1)) {
      for (const [id, text] of Object.entries(texts)) gradients.set(id, text);
    }
    for (const [id, text] of gradients) {
      const value = badges.get(id);
      badges.set(id, value && text.startsWith("∂") ? `${value}\n${text}` : text);
    }
    return badges;
  }
}
