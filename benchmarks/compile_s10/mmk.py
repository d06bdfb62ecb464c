import torch, time, statistics, torch.nn.functional as F
torch.set_num_threads(1); torch.manual_seed(0)
B=256
h1 = torch.randn(B,32,6,6); w2 = torch.randn(64,32,3,3)
cols = torch.randn(B*16,288); w = torch.randn(64,288); b = torch.randn(64)
g = torch.randn(B*16,64); 
fns = {
 "conv2 fwd aten (oneDNN)": lambda: F.conv2d(h1, w2, b),
 "F.linear MKL [4096,288]x[288,64]": lambda: F.linear(cols, w, b),
 "mkldnn._linear_pointwise": lambda: torch.ops.mkldnn._linear_pointwise(cols, w, b, "none", [], ""),
 "conv 1x1 oneDNN on [1,288,4096,1]": None,
 "mm bwd MKL [4096,64]x[64,288]": lambda: g @ w,
 "mkldnn linear bwd-form": lambda: torch.ops.mkldnn._linear_pointwise(g, w.t().contiguous(), None, "none", [], ""),
}
c4 = cols.t().contiguous().reshape(1,288,4096,1); w4 = w.reshape(64,288,1,1)
fns["conv 1x1 oneDNN on [1,288,4096,1]"] = lambda: F.conv2d(c4, w4, b)
wt = w.t().contiguous()
fns["mkldnn linear bwd-form"] = lambda: torch.ops.mkldnn._linear_pointwise(g, wt, None, "none", [], "")
for k,f in list(fns.items()):
    try: f()
    except Exception as e: print(k, "fails", str(e)[:100]); del fns[k]
res={k:[] for k in fns}
for r in range(30):
    for k,f in fns.items():
        t=time.process_time()
        for _ in range(10): f()
        res[k].append((time.process_time()-t)/10*1e3)
base = res["conv2 fwd aten (oneDNN)"]
for k,v in res.items(): print(f"{k:40s} {statistics.median(v):.3f} ms (min {min(v):.3f}) ratio {statistics.median(a/b for a,b in zip(v,base)):.2f}")
import os; print(os.getloadavg())
