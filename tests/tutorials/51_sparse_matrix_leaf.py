# A sparse adjacency matrix times dense node features: a one-layer graph network.
import torch

torch.manual_seed(16)
edges = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 3, 0]])
adjacency = torch.sparse_coo_tensor(edges, torch.ones(5), (4, 4))
features = torch.randn(4, 3)
weight = torch.randn(3, 2, requires_grad=True)

messages = torch.sparse.mm(adjacency, features @ weight)
loss = torch.relu(messages).sum()
loss.backward()
print("weight.grad:", weight.grad)
