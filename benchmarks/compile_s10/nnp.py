import torch, time, statistics, torch.nn.functional as F, os
torch.set_num_threads(1); torch.manual_seed(0)
B=256
h1 = torch.randn(B,32,6,6); w2 = torch.randn(64,32,3,3); b2=torch.randn(64); g2 = torch.randn(B,64,4,4)
x = torch.randn(B,1,8,8); w1 = torch.randn(32,1,3,3); b1 = torch.randn(32)
w2f = w2.flip(2,3).transpose(0,1).contiguous()   # [32,64,3,3]
g2p = F.pad(g2, (2,2,2,2))
aten = torch.ops.aten
print("nnpack available", torch.backends.nnpack.is_available() if hasattr(torch.backends,'nnpack') else '?')
ref = aten.convolution_backward(g2, h1, w2, None, [1,1],[0,0],[1,1],False,[0,0],1,[True,False,False])[0]
alt = torch._nnpack_spatial_convolution(g2, w2f, None, [2,2])
print("nnpack bwd diff", (ref-alt).abs().max().item(), ref.abs().max().item())
print("nnpack fwd diff", (F.conv2d(h1,w2,b2) - torch._nnpack_spatial_convolution(h1, w2, b2, [0,0])).abs().max().item())
fns = {
 "conv2 fwd aten": lambda: F.conv2d(h1, w2, b2),
 "conv2 fwd nnpack": lambda: torch._nnpack_spatial_convolution(h1, w2, b2, [0,0]),
 "conv2 input grad aten": lambda: aten.convolution_backward(g2, h1, w2, None, [1,1],[0,0],[1,1],False,[0,0],1,[True,False,False]),
 "conv2 input grad nnpack (pad 2, flipped)": lambda: torch._nnpack_spatial_convolution(g2, w2f, None, [2,2]),
 "conv1 fwd aten": lambda: F.conv2d(x, w1, b1),
 "conv1 fwd nnpack": lambda: torch._nnpack_spatial_convolution(x, w1, b1, [0,0]),
}
res={k:[] for k in fns}
for r in range(30):
    for k,f in fns.items():
        t=time.process_time()
        for _ in range(10): f()
        res[k].append((time.process_time()-t)/10*1e3)
for k,v in res.items(): print(f"{k:45s} {statistics.median(v):.3f} ms (min {min(v):.3f})")
print(os.getloadavg())
