// A graph view with a player bar and nothing else: shared by the embed page and HTML exports.
import { GraphView } from "./graph-view.js";
import { Player } from "./player.js";
import { Timeline } from "./timeline.js";

// layoutFor(pass) gives the layout that draws a pass (one iteration of a training loop).
// onPosition(position) follows the player (the HTML export's caption).
export function mountPlayer({
  graph,
  layout,
  step,
  t,
  graphContainer,
  playerContainer,
  layoutFor = null,
  minScale = 1,
  onPosition = null,
}) {
  const timeline = new Timeline(graph);
  const view = new GraphView(graphContainer, { t, minScale, maxScale: 2.5 });
  view.addZoomControls(
    playerContainer.parentElement?.classList.contains("embed-bar")
      ? playerContainer.parentElement
      : null,
  );
  let pass = Math.min(step?.pass ?? 0, Math.max(0, graph.backward.length - 1));
  let shown = layout;
  const player = new Player(playerContainer, {
    t,
    onPosition: (position) => {
      const state = timeline.state(position);
      view.setState(state);
      view.follow(state.current);
      onPosition?.(position);
    },
    onPass: async (chosen) => {
      pass = chosen;
      if (layoutFor) {
        shown = await layoutFor(pass);
        view.setGraph(graph, shown);
        view.fit();
      }
      const positions = timeline.positions(pass, shown);
      player.setPositions(
        positions,
        positions.findIndex((p) => p.phase === "backward"),
      );
    },
  });
  player.setPasses(graph.backward, pass);
  // Draw after the player bar is in place, so the fit measures the room the graph really has.
  view.setGraph(graph, shown);
  const positions = timeline.positions(pass, shown);
  const found = step
    ? positions.findIndex((p) => p.phase === step.phase && p.index >= step.index)
    : 0;
  player.setPositions(positions, Math.max(0, found));
  view.fit();
  new ResizeObserver(() => view.fit()).observe(graphContainer);
  return { view, player, timeline };
}
