// A graph view with a player bar and nothing else: shared by the embed page and HTML exports.
import { GraphView } from "./graph-view.js";
import { Player } from "./player.js";
import { Timeline } from "./timeline.js";

export function mountPlayer({ graph, layout, step, t, graphContainer, playerContainer }) {
  const timeline = new Timeline(graph);
  const view = new GraphView(graphContainer, { t });
  view.setGraph(graph, layout);
  view.fit();
  window.addEventListener("resize", () => view.fit());
  let pass = Math.min(step?.pass ?? 0, Math.max(0, graph.backward.length - 1));
  const player = new Player(playerContainer, {
    t,
    onPosition: (position) => view.setState(timeline.state(position)),
    onPass: (chosen) => { pass = chosen; player.setPositions(timeline.positions(pass), graph.forward.length); },
  });
  player.setPasses(graph.backward, pass);
  const positions = timeline.positions(pass);
  const found = step ? positions.findIndex((p) => p.phase === step.phase && p.index === step.index) : 0;
  player.setPositions(positions, Math.max(0, found));
  return { view, player, timeline };
}
