import torch, time, statistics, torch.nn.functional as F, os
torch.set_num_threads(1); torch.manual_seed(0)
B=256
w = torch.randn(32,9); colsA = torch.randn(B,9,36); colsB = torch.randn(9, B*36); colsC = torch.randn(B*36, 9)
g = torch.randn(B,32,36); gB = torch.randn(32, B*36); gC = torch.randn(B*36, 32)
x = torch.randn(B,1,8,8); w4 = w.reshape(32,1,3,3)
wexp = w.unsqueeze(0).expand(B,32,9)
fns = {
 "conv1 fwd aten": lambda: F.conv2d(x, w4),
 "bmm [B: 32x9 @ 9x36] (current fwd)": lambda: torch.bmm(wexp, colsA),
 "mm [32,9]x[9,B*36]": lambda: torch.mm(w, colsB),
 "mm [B*36,9]x[9,32]": lambda: torch.mm(colsC, w.t()),
 "bmm [B: 9x32 @ 32x36] (current bwd)": lambda: torch.bmm(wexp.transpose(1,2), g),
 "mm [9,32]x[32,B*36]": lambda: torch.mm(w.t(), gB),
 "mm [B*36,32]x[32,9]": lambda: torch.mm(gC, w),
 "einsum-free broadcast 9 FMAs (eager)": None,
}
del fns["einsum-free broadcast 9 FMAs (eager)"]
res={k:[] for k in fns}
for r in range(30):
    for k,f in fns.items():
        t=time.process_time()
        for _ in range(20): f()
        res[k].append((time.process_time()-t)/20*1e3)
for k,v in res.items(): print(f"{k:40s} {statistics.median(v):.3f} ms (min {min(v):.3f})")
print(os.getloadavg())
