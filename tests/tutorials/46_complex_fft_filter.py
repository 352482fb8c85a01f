# A learnable frequency filter: real signal -> FFT (complex) -> scaled spectrum -> inverse FFT.
import torch

torch.manual_seed(12)
t = torch.linspace(0, 1, 32)
signal = torch.sin(2 * torch.pi * 3 * t) + 0.3 * torch.randn(32)
clean = torch.sin(2 * torch.pi * 3 * t)

gains = torch.ones(17, requires_grad=True)
opt = torch.optim.Adam([gains], lr=0.05)
for step in range(40):
    spectrum = torch.fft.rfft(signal)
    filtered = torch.fft.irfft(spectrum * gains, n=32)
    loss = ((filtered - clean) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"filtered error {loss.item():.5f}")
