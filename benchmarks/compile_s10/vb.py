import torch, torch.nn.functional as F
torch.set_num_threads(1)
h1 = torch.randn(256,32,6,6); w2 = torch.randn(64,32,3,3); b2=torch.randn(64); g2 = torch.randn(256,64,4,4)
for _ in range(3):
    F.conv2d(h1, w2, b2)
    torch.ops.aten.convolution_backward(g2, h1, w2, None, [1,1],[0,0],[1,1],False,[0,0],1,[True,False,False])
