import torch, time, statistics, torch.nn.functional as F
torch.set_num_threads(1); torch.manual_seed(0)
B=256
h1 = torch.randn(B,32,6,6); w2 = torch.randn(64,32,3,3); g2 = torch.randn(B,64,4,4)
h1_nhwc = h1.permute(0,2,3,1).contiguous()
w2m = w2.permute(2,3,1,0).reshape(288,64).contiguous()   # [ky,kx,c] x o
w2mT = w2m.t().contiguous()
cols = torch.randn(B*16,288)
g2m = torch.randn(B*16,64)
x = torch.randn(B,1,8,8); w1=torch.randn(32,1,3,3)
def im2col_nhwc(h):  # h [B,6,6,32] -> [B*16, 288]
    return torch.stack([h[:, i:i+4, j:j+4, :] for i in range(3) for j in range(3)], dim=3).reshape(B*16, 288)
def col2im_nhwc(c):  # [B*16,288] -> [B,6,6,32]
    c = c.reshape(B,4,4,9,32); out = torch.zeros(B,6,6,32)
    for i in range(3):
        for j in range(3):
            out[:, i:i+4, j:j+4, :] += c[:,:,:,i*3+j]
    return out
fns = {
 "conv2 fwd aten": lambda: F.conv2d(h1, w2),
 "conv2 fwd mm only [4096,288]x[288,64]": lambda: cols @ w2m,
 "conv2 fwd mm, weight^T layout": lambda: torch.mm(cols, w2mT.t()),
 "conv2 im2col nhwc (eager)": lambda: im2col_nhwc(h1_nhwc),
 "conv2 input grad aten": lambda: torch.ops.aten.convolution_backward(g2, h1, w2, None, [1,1],[0,0],[1,1],False,[0,0],1,[True,False,False]),
 "conv2 input grad mm only [4096,64]x[64,288]": lambda: g2m @ w2mT,
 "conv2 col2im nhwc (eager)": lambda: col2im_nhwc(cols),
 "conv1 fwd aten": lambda: F.conv2d(x, w1),
 "mm [4096,288]x[288,64] as bmm-free addmm": lambda: torch.addmm(torch.zeros(64), cols, w2m),
}
for k,f in fns.items():
    for _ in range(5): f()
res={k:[] for k in fns}
for r in range(30):
    for k,f in fns.items():
        t=time.process_time()
        for _ in range(10): f()
        res[k].append((time.process_time()-t)/10*1e3)
for k,v in res.items(): print(f"{k:45s} {statistics.median(v):.3f} ms (min {min(v):.3f})")
