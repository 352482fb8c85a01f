// English and Chinese strings; the chosen language is remembered in localStorage.

const STRINGS = {
  en: {
    title: "Autograd Explorer",
    run: "Run",
    running: "Running… {s} s",
    cancel: "Cancel",
    gallery: "Gallery",
    program: "Program",
    device: "Device",
    forward: "Forward",
    backward: "Backward",
    pass: "Pass {n}",
    passAdded: "Pass {n} (added)",
    stepBack: "Step back",
    stepForward: "Step forward",
    play: "Play",
    pause: "Pause",
    toStart: "To start",
    toEnd: "To end",
    speed: "Speed",
    inspector: "Inspector",
    selectNode: "Select a node in the graph to see everything recorded about it.",
    legend: "Legend",
    leafGrad: "leaf, requires grad",
    parameter: "parameter",
    leafNoGrad: "leaf, no grad",
    nonLeaf: "non-leaf tensor",
    op: "op (forward · grad_fn)",
    gradient: "gradient",
    module: "module (click to expand)",
    name: "name",
    shape: "shape",
    dtype: "dtype",
    deviceField: "device",
    requiresGrad: "requires_grad",
    isLeaf: "is_leaf",
    retainsGrad: "retains_grad",
    gradFn: "grad_fn",
    version: "version",
    value: "value",
    gradNow: "gradient at this step",
    gradAttr: ".grad",
    saved: "saved tensors",
    op_: "op",
    line: "line",
    moduleField: "module",
    none: "None",
    noneNoGrad: "None (requires_grad=False)",
    nonLeafNote:
      "Non-leaf: .grad stays None after backward unless retain_grad() was called; the gradient that flowed through it is shown above.",
    retainedNote: "retain_grad() was called, so .grad keeps the gradient that flowed through it.",
    notArrived: "not arrived yet",
    contributions: "contributions",
    sumInto: "sum into .grad",
    errorAtLine: "{type} at line {line}:",
    refused: "Refused at line {line}: {message}",
    limit: "Limit '{limit}' exceeded: {message}",
    busy: "The server is busy; retry in {s} s.",
    failed: "Request failed: {message}",
    done: "Recorded {nodes} nodes, {passes} backward passes",
    copyLink: "Copy link",
    copied: "Link copied",
    download: "Download",
    embed: "Embed",
    everyStep: "every step",
    openInExplorer: "Open in Autograd Explorer",
    fit: "Fit",
    zoomIn: "Zoom in",
    zoomOut: "Zoom out",
    expandAll: "Expand all",
    collapseAll: "Collapse all",
    expandDepth: "Expand to depth",
    depthPick: "N",
    "note.foldedLater":
      "The view asked for was too big to lay out: every fold of repeats shows its first {open} iterations open and the others closed.",
    "note.foldedAll": "The view asked for was too big to lay out: repeats are shown folded.",
    theme: "Theme",
    series: "Training series",
    stdout: "Output",
    notes: "Notes",
    language: "Language",
    stepLabel: "{phase} step {i} of {n}",
    start: "Start",
    collapse: "collapse",
    expand: "expand",
    params: "{n} params",
    nodesCount: "{n} nodes",
    truncated: "Recorded {r} of {t} passes in full; the rest as series.",
    added: "added by the explorer",
    atEnd: "at the end of the program:",
    noCuda: "no CUDA device on this server",
    scalar: "scalar",
    lossSeries: "loss",
    present: "Present",
    embedCode: "Embed code",
    pressNextBefore: "Press",
    pressNextAfter: "to take the first step",
    graphLabel: "Autograd graph",
    keepsGrad: "retain_grad() was called: it keeps its .grad",
    failedCall: "this call raised the error; it made no autograd node",
    followNotice: "Too large to read whole here: the view follows the current step · ⤢ shows all",
    overviewNotice: "The whole graph, small · ⤢ returns to readable size",
    heatmap: "heatmap",
    histogram: "histogram",
    histogramSample: "histogram of {n} values spread evenly over all {total}",
    min: "min",
    max: "max",
    mean: "mean",
    std: "std",
    seriesLabel: "Loss, parameters and gradients per backward pass",
    passAxis: "pass",
    passPicker: "Backward pass",
    positionLabel: "Step",
    auto: "auto",
    lineGroup: "line {n}",
    offline: "The explorer's server cannot be reached.",
    retry: "Try again",
    "note.implicitBackward":
      "The program never called backward(); the explorer ran {name}.backward() to show the backward pass.",
    "note.warning": "{category} (line {line}):",
    "note.warningNoLine": "{category}:",
    "note.noLayout": "No layout: {message}",
    "note.noGraphviz":
      "graphviz's 'dot' was not found: install graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz) to see graph layouts",
    "note.failedPass": "Backward pass {n} raised an error, so it was not recorded.",
    "note.passesSummarised":
      "Backward passes {first}–{last} (line {line}) ran without being recorded in full: the chart keeps every one, the graph of the last one is shown, and each leaf shows its final .grad.",
    "note.passesSummarisedLastFull":
      "Backward passes {first}–{last} (line {line}) ran without being recorded in full: the chart keeps every one, and the loop's last pass is recorded in full.",
    "note.nodeLimit":
      "The graph reached its limit of {limit} nodes at line {line}; the rest of the program ran without being recorded, and the graph shows what was recorded before.",
    "note.nodeLimitNoLine":
      "The graph reached its limit of {limit} nodes; the rest of the program ran without being recorded, and the graph shows what was recorded before.",
    "note.functionTransform":
      "torch.func transforms (grad, vmap, jacrev, ...) ran without being recorded inside; the tensors they return are recorded where the program uses them.",
    "note.quietCheck":
      "{check} ran without being recorded: it calls the function it checks thousands of times.",
    "note.callNotRecorded":
      "A call of {call} could not be recorded; the program ran on, and the graph leaves it out:",
    "note.responseValuesSummarised":
      "The graph's answer was {size} bytes, over the limit of {limit}: every tensor is shown by its statistics, without its values.",
    "note.responseNodesDropped":
      "The graph still did not fit in {limit} bytes: only its first nodes are shown.",
    // chain rule and live mode (issue 10)
    rule: "chain rule",
    noRule: "No rule for {fn}: its gradients are shown as recorded.",
    gradientsMeet: "gradients meet at {name}",
    gradientsMeetShort: "gradients meet",
    accumulated: ".grad += g",
    live: "Live",
    liveHint: "Trace again after a pause in typing",
    // chain-rule words sent as message keys (app/rule_text.py holds the same texts)
    "rule.unknown": "No rule for {fn}: its gradients are shown as recorded.",
    "rule.notApplied":
      "The rule of {fn} could not be applied to the recorded values: its gradients are shown as recorded.",
    "rule.oneHot":
      "one_hot({target}) is 1 at each row's target class and 0 elsewhere: only the target's score gets a gradient, -1/{n} of the loss's.",
    "rule.logSoftmax":
      "Every score of a row moves every output of that row: the Jacobian is I - 1·softmax({x})ᵀ, so each score gets its own gradient minus softmax({x}) times the row's total gradient.",
    "rule.softmax":
      "Every input of a row moves every output of that row: the Jacobian is diag({y}) - {y}·{y}ᵀ, not only its diagonal.",
    "rule.select":
      "The gradient goes back to index {index} of dimension {dim}; every other element of {x} gets 0.",
    "rule.slice": "The gradient goes back into the slice; every other element of {x} gets 0.",
    "rule.index":
      "The gradient goes back to the indexed elements (added up where an index repeats); every other element of {x} gets 0.",
    "rule.expand":
      "expand copied {x} without copying memory: the copies' gradients are added up, back to the shape {sizes}.",
    "rule.broadcast":
      "Broadcasting repeated {x} to the shape of the result: the gradients of the repeats are added up, back to {x}'s shape.",
    "note.rulesCapped": "Chain rules are shown for the first {n} backward steps.",
    "note.debuggerSkipped":
      "The program asked for the debugger (pdb.set_trace() / breakpoint()); the explorer has no console, so it went on. Step through the graph with the player instead.",
    "note.programExit": "The program called exit({code}); it ended there.",
    "note.magicsSkipped":
      "{n} notebook line(s) starting with % or ! (such as %matplotlib inline) were skipped: they are IPython commands, not Python.",
    "note.figureFailed": "Figure {number} could not be drawn: {message}",
    "note.layoutBusy": "No layout yet: {message}; expand or reload to try again",
    "note.freedGraph":
      "No backward pass recorded: an earlier backward() freed this graph's saved tensors. Call explore(y) before y.backward(), or use y.backward(retain_graph=True).",
  },
  zh: {
    title: "自动求导探索器",
    run: "运行",
    running: "运行中… {s} 秒",
    cancel: "取消",
    gallery: "示例",
    program: "程序",
    device: "设备",
    forward: "前向",
    backward: "反向",
    pass: "第 {n} 次反向",
    passAdded: "第 {n} 次反向(自动添加)",
    stepBack: "后退一步",
    stepForward: "前进一步",
    play: "播放",
    pause: "暂停",
    toStart: "回到开头",
    toEnd: "跳到结尾",
    speed: "速度",
    inspector: "检查器",
    selectNode: "在图中选择一个节点,查看记录的全部信息。",
    legend: "图例",
    leafGrad: "叶子节点,需要梯度",
    parameter: "参数",
    leafNoGrad: "叶子节点,不需要梯度",
    nonLeaf: "非叶子张量",
    op: "运算(前向 · grad_fn)",
    gradient: "梯度",
    module: "模块(点击展开)",
    name: "名称",
    shape: "形状",
    dtype: "数据类型",
    deviceField: "设备",
    requiresGrad: "requires_grad",
    isLeaf: "is_leaf",
    retainsGrad: "retains_grad",
    gradFn: "grad_fn",
    version: "版本",
    value: "值",
    gradNow: "此步的梯度",
    gradAttr: ".grad",
    saved: "保存的张量",
    op_: "运算",
    line: "行",
    moduleField: "模块",
    none: "None",
    noneNoGrad: "None(requires_grad=False)",
    nonLeafNote:
      "非叶子节点:除非调用 retain_grad(),反向传播后 .grad 仍为 None;上面显示的是流经它的梯度。",
    retainedNote: "调用了 retain_grad(),所以 .grad 保留了流经它的梯度。",
    notArrived: "梯度尚未到达",
    contributions: "各路梯度",
    sumInto: "求和写入 .grad",
    errorAtLine: "第 {line} 行 {type}:",
    "torch.nonLeafGrad":
      "(读取了非叶子张量的 .grad:backward() 不会为它保存梯度;需要时先对它调用 .retain_grad()。)",
    "torch.inplaceLeaf":
      "(需要梯度的叶子张量不能被原地修改:请改用非原地运算,或在 torch.no_grad() 中修改。)",
    "torch.inplaceSaved": "(反向传播需要的张量在前向之后被原地修改了:请改用非原地运算。)",
    "torch.backwardTwice":
      "(计算图在第一次 backward() 后已被释放:要再次反向传播,第一次请传 retain_graph=True。)",
    "torch.matmulShapes": "(矩阵乘法的形状不匹配:左边的列数必须等于右边的行数。)",
    "torch.noGradFn": "(这个张量不需要梯度,也没有 grad_fn:它的输入都没有设置 requires_grad=True。)",
    "torch.scalarOnly":
      "(只有标量输出才能直接调用 backward():请先求和或求平均,或传入 gradient 参数。)",
    "torch.indexOutOfBounds": "(下标超出了张量的范围。)",
    refused: "第 {line} 行被拒绝:{message}",
    limit: "超出限制 '{limit}':{message}",
    busy: "服务器繁忙,请 {s} 秒后重试。",
    failed: "请求失败:{message}",
    done: "记录了 {nodes} 个节点,{passes} 次反向传播",
    copyLink: "复制链接",
    copied: "链接已复制",
    download: "下载",
    embed: "嵌入",
    everyStep: "每一步",
    openInExplorer: "在自动求导探索器中打开",
    fit: "适应窗口",
    zoomIn: "放大",
    zoomOut: "缩小",
    expandAll: "全部展开",
    collapseAll: "全部折叠",
    expandDepth: "展开到第几层",
    depthPick: "层",
    "note.foldedLater": "所请求的视图太大,无法布局:每组重复只展开前 {open} 次迭代,其余保持折叠。",
    "note.foldedAll": "所请求的视图太大,无法布局:重复部分以折叠方式显示。",
    theme: "主题",
    series: "训练曲线",
    stdout: "输出",
    notes: "提示",
    language: "语言",
    stepLabel: "{phase} 第 {i}/{n} 步",
    start: "开始",
    collapse: "折叠",
    expand: "展开",
    params: "{n} 个参数",
    nodesCount: "{n} 个节点",
    truncated: "前 {r} 次反向(共 {t} 次)完整记录,其余只记录曲线。",
    added: "由探索器添加",
    atEnd: "程序结束时:",
    noCuda: "此服务器没有 CUDA 设备",
    scalar: "标量",
    lossSeries: "损失",
    present: "演示",
    embedCode: "嵌入代码",
    pressNextBefore: "按",
    pressNextAfter: "键走出第一步",
    graphLabel: "自动求导计算图",
    keepsGrad: "调用了 retain_grad():保留它的 .grad",
    failedCall: "这次调用引发了错误,没有生成自动求导节点",
    followNotice: "图太大,无法在此完整显示:视图跟随当前步骤 · ⤢ 显示全图",
    overviewNotice: "全图(缩小显示) · ⤢ 恢复可读大小",
    heatmap: "热力图",
    histogram: "直方图",
    histogramSample: "直方图统计了均匀分布在全部 {total} 个值中的 {n} 个值",
    min: "最小",
    max: "最大",
    mean: "均值",
    std: "标准差",
    seriesLabel: "每次反向传播后的损失、参数与梯度",
    passAxis: "第几次反向",
    passPicker: "反向传播",
    positionLabel: "步骤",
    auto: "自动",
    lineGroup: "第 {n} 行",
    offline: "无法连接探索器的服务器。",
    retry: "重试",
    "note.implicitBackward":
      "程序没有调用 backward();探索器替你运行了 {name}.backward(),以展示反向传播。",
    "note.warning": "{category}(第 {line} 行):",
    "note.warningNoLine": "{category}:",
    "note.noLayout": "无法布局:{message}",
    "note.noGraphviz":
      "没有找到 graphviz 的 dot:请安装 graphviz(Debian/Ubuntu:apt-get install graphviz;macOS:brew install graphviz)以显示计算图布局",
    "note.failedPass": "第 {n} 次反向传播出错,因此没有记录。",
    "note.passesSummarised":
      "第 {first}–{last} 次反向传播(第 {line} 行)没有完整记录:图表保留了每一次,计算图显示最后一次,每个叶子显示它最终的 .grad。",
    "note.passesSummarisedLastFull":
      "第 {first}–{last} 次反向传播(第 {line} 行)没有完整记录:图表保留了每一次,循环的最后一次完整记录。",
    "note.nodeLimit":
      "计算图在第 {line} 行达到 {limit} 个节点的上限;程序的其余部分运行时没有记录,计算图显示此前记录的部分。",
    "note.nodeLimitNoLine":
      "计算图达到 {limit} 个节点的上限;程序的其余部分运行时没有记录,计算图显示此前记录的部分。",
    "note.functionTransform":
      "torch.func 变换(grad、vmap、jacrev 等)内部的运算没有记录;它们返回的张量在程序使用之处记录。",
    "note.quietCheck": "{check} 运行时没有记录:它会把被检查的函数调用成千上万次。",
    "note.callNotRecorded": "一次 {call} 调用无法记录;程序继续运行,计算图中略去了它:",
    "note.responseValuesSummarised":
      "计算图的应答有 {size} 字节,超过 {limit} 的上限:每个张量只显示统计量,不显示数值。",
    "note.responseNodesDropped": "计算图仍然超过 {limit} 字节:只显示前面的节点。",
    // chain rule and live mode (issue 10)
    rule: "链式法则",
    noRule: "{fn} 没有对应的求导法则:梯度按记录值显示。",
    gradientsMeet: "梯度在 {name} 处汇合",
    gradientsMeetShort: "梯度汇合",
    accumulated: ".grad += g",
    live: "实时",
    liveHint: "停止输入片刻后自动重新运行",
    // chain-rule words sent as message keys (app/rule_text.py holds the same texts)
    "rule.unknown": "{fn} 没有对应的求导法则:梯度按记录值显示。",
    "rule.notApplied": "{fn} 的求导法则无法用于记录的数值:梯度按记录值显示。",
    "rule.oneHot":
      "one_hot({target}) 在每一行的目标类别处为 1,其余为 0:只有目标类别的得分得到梯度,大小是损失梯度的 -1/{n}。",
    "rule.logSoftmax":
      "同一行的每个得分都会影响该行的每个输出:雅可比矩阵是 I - 1·softmax({x})ᵀ,所以每个得分的梯度等于它自己的梯度减去 softmax({x}) 乘以该行梯度之和。",
    "rule.softmax":
      "同一行的每个输入都会影响该行的每个输出:雅可比矩阵是 diag({y}) - {y}·{y}ᵀ,而不只是它的对角线。",
    "rule.select": "梯度回到第 {dim} 维的下标 {index} 处;{x} 的其他元素得到 0。",
    "rule.slice": "梯度回到切片所在的位置;{x} 的其他元素得到 0。",
    "rule.index": "梯度回到被索引的元素(同一下标出现多次时相加);{x} 的其他元素得到 0。",
    "rule.expand": "expand 只是复制了 {x} 的视图:各个副本的梯度相加,变回形状 {sizes}。",
    "rule.broadcast": "广播把 {x} 重复成结果的形状:各个重复的梯度相加,变回 {x} 的形状。",
    "note.rulesCapped": "只为前 {n} 个反向步骤显示链式法则。",
    "note.debuggerSkipped":
      "程序请求了调试器(pdb.set_trace() / breakpoint());探索器没有控制台,所以程序继续运行。请改用播放器逐步查看计算图。",
    "note.programExit": "程序调用了 exit({code});程序在那里结束。",
    "note.magicsSkipped":
      "跳过了 {n} 行以 % 或 ! 开头的笔记本命令(例如 %matplotlib inline):它们是 IPython 命令,不是 Python。",
    "note.figureFailed": "第 {number} 号图无法绘制:{message}",
    "note.layoutBusy": "暂时无法布局:{message};展开或重新加载以再试一次",
    "note.freedGraph":
      "没有记录反向传播:之前的 backward() 已经释放了这个计算图保存的张量。请在 y.backward() 之前调用 explore(y),或者使用 y.backward(retain_graph=True)。",
  },
};

// The error banner, the failed backward pass and the inspector's autograd fields (issue 18).
Object.assign(STRINGS.en, {
  dismiss: "Dismiss",
  errorInPass: "{type} in backward pass {n}, line {line}:",
  errorInPassFrom: "{type} in backward pass {n} from {root}, line {line}:",
  failedPassMark: "backward pass {n} started here and raised the error",
  gradOutputs: "grad_outputs",
  gradInputs: "grad_inputs",
  variableField: "variable",
});
Object.assign(STRINGS.zh, {
  dismiss: "关闭",
  errorInPass: "第 {n} 次反向传播(第 {line} 行)出错,{type}:",
  errorInPassFrom: "从 {root} 开始的第 {n} 次反向传播(第 {line} 行)出错,{type}:",
  failedPassMark: "第 {n} 次反向传播从这里开始并出错",
  gradOutputs: "输出端梯度 grad_outputs",
  gradInputs: "输入端梯度 grad_inputs",
  variableField: "对应叶子 variable",
});

const STORAGE_KEY = "autograd-explorer.lang";

export function languages() {
  return Object.keys(STRINGS);
}

// Storage may be refused (an iframe in slides, a file:// export): then nothing is remembered.
export function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

export function preferredLanguage() {
  const stored = storage()?.getItem(STORAGE_KEY);
  if (stored && STRINGS[stored]) return stored;
  return navigator.language?.toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function createTranslator(lang) {
  const table = STRINGS[lang] ?? STRINGS.en;
  return (key, vars = {}) => {
    const template = table[key] ?? STRINGS.en[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
  };
}

export function rememberLanguage(lang) {
  storage()?.setItem(STORAGE_KEY, lang);
}

// Fill every element marked data-i18n (text) or data-i18n-label (aria-label and title).
export function translatePage(root, t, lang) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-label]")) {
    const text = t(node.dataset.i18nLabel);
    node.setAttribute("aria-label", text);
    node.setAttribute("title", text);
  }
}
