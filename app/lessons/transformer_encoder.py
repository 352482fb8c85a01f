# title: A 24-layer transformer encoder
# title_zh: 24 层 Transformer 编码器
# lesson: a big graph: ops group by module (layers.0, layers.1, ...); expand one to look inside.
# lesson_zh: 大图:运算按模块分组(layers.0、layers.1……);展开一个即可看到内部。
import torch
import torch.nn as nn

torch.manual_seed(0)
layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
encoder = nn.TransformerEncoder(layer, num_layers=24, enable_nested_tensor=False)
tokens = torch.randn(2, 8, 32)
out = encoder(tokens)
loss = out.pow(2).mean()
loss.backward()
print("loss:", loss.item())
