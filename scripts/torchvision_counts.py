"""Reference counts for torchvision MobileNetV3 (Large/Small) and MobileNetV2.

Run: /tmp/tvenv/bin/python /work/v3ref/measure.py
MACs = FlopCounterMode total FLOPs / 2 (conv + matmul/addmm only).
"""
import json
import sys

import torch
import torch.nn as nn
import torchvision
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small
from torchvision.models.mobilenetv3 import InvertedResidual as V3Block, MobileNetV3, _mobilenet_v3_conf

OUT_JSON = "/work/v3ref/torchvision_counts.json"


def count(model):
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    total = fc.get_total_flops()
    counts = fc.get_flop_counts()
    root = type(model).__name__
    per_module = {}
    for name, ops in counts.items():
        if not name.startswith(root + "."):
            continue
        rel = name[len(root) + 1:]
        parts = rel.split(".")
        # top-level children (features, classifier) and features[i], classifier[i]
        if len(parts) <= 2:
            per_module[rel] = sum(ops.values()) // 2
    # params per features[i] / classifier
    per_module_params = {}
    for top in ("features", "classifier"):
        mod = getattr(model, top)
        per_module_params[top] = sum(p.numel() for p in mod.parameters())
        for i, sub in enumerate(mod):
            per_module_params[f"{top}.{i}"] = sum(p.numel() for p in sub.parameters())
    assert total % 2 == 0
    return {
        "params": params,
        "flops": total,
        "macs": total // 2,
        "macs_per_module": dict(sorted(per_module.items(), key=lambda kv: _key(kv[0]))),
        "params_per_module": per_module_params,
    }


def _key(name):
    return [(0, int(p)) if p.isdigit() else (1, p) for p in name.split(".")]


def v3_structure(model):
    blocks = []
    for i, f in enumerate(model.features):
        if not isinstance(f, V3Block):
            continue
        layers = list(f.block)
        convs = [l for l in f.block.modules() if isinstance(l, nn.Conv2d)]
        dw = [c for c in convs if c.groups > 1 and c.groups == c.in_channels][0]
        se = None
        for l in layers:
            if hasattr(l, "fc1") and hasattr(l, "fc2"):
                se = l
        act = None
        for l in f.block.modules():
            if isinstance(l, (nn.ReLU, nn.Hardswish)):
                act = type(l).__name__
                break
        in_ch = convs[0].in_channels
        out_ch = convs[-1].out_channels
        blocks.append({
            "index": i,
            "in": in_ch,
            "exp": dw.in_channels,
            "out": out_ch,
            "kernel": dw.kernel_size[0],
            "stride": dw.stride[0],
            "dilation": dw.dilation[0],
            "has_expand_conv": dw.in_channels != in_ch,
            "se": se is not None,
            "se_squeeze": se.fc1.out_channels if se else None,
            "se_scale_act": type(se.scale_activation).__name__ if se else None,
            "se_fc1_bias": se.fc1.bias is not None if se else None,
            "se_fc2_bias": se.fc2.bias is not None if se else None,
            "act": act,
            "residual": bool(f.use_res_connect),
        })
    first = model.features[0]
    last = model.features[-1]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_cfg = sorted({(m.eps, m.momentum) for m in bns})
    convs_all = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    se_convs = [m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and (n.endswith("fc1") or n.endswith("fc2"))]
    non_se_convs = [m for m in convs_all if not any(m is s for s in se_convs)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    return {
        "stem": {"in": first[0].in_channels, "out": first[0].out_channels, "kernel": first[0].kernel_size[0],
                 "stride": first[0].stride[0], "act": type(first[2]).__name__},
        "blocks": blocks,
        "last_conv": {"in": last[0].in_channels, "out": last[0].out_channels, "kernel": last[0].kernel_size[0],
                      "act": type(last[2]).__name__, "bias": last[0].bias is not None},
        "classifier": [str(m) for m in model.classifier],
        "classifier_linears": [{"in": l.in_features, "out": l.out_features, "bias": l.bias is not None} for l in linears],
        "dropout": [m.p for m in model.classifier if isinstance(m, nn.Dropout)],
        "se_convs_all_have_bias": all(c.bias is not None for c in se_convs),
        "non_se_convs_any_bias": any(c.bias is not None for c in non_se_convs),
        "batchnorm_eps_momentum": [list(x) for x in bn_cfg],
        "num_batchnorm": len(bns),
    }


def v2_structure(model):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    return {
        "last_conv_out": model.features[-1][0].out_channels,
        "classifier_linears": [{"in": l.in_features, "out": l.out_features, "bias": l.bias is not None} for l in linears],
        "batchnorm_eps_momentum": [list(x) for x in sorted({(m.eps, m.momentum) for m in bns})],
    }


def build_v3_width(arch, w):
    try:
        fn = mobilenet_v3_large if arch == "mobilenet_v3_large" else mobilenet_v3_small
        return fn(width_mult=w), "builder(width_mult=...)"
    except TypeError:
        setting, last = _mobilenet_v3_conf(arch, width_mult=w)
        return MobileNetV3(setting, last), "_mobilenet_v3_conf + MobileNetV3"


def main():
    torch.manual_seed(0)
    res = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "python": sys.version.split()[0], "input": [1, 3, 224, 224], "num_classes": 1000,
           "macs_definition": "FlopCounterMode total FLOPs / 2 (conv + mm/addmm only)", "models": {}}

    specs = [
        ("mobilenet_v3_large", lambda: (mobilenet_v3_large(), "builder"), "v3"),
        ("mobilenet_v3_small", lambda: (mobilenet_v3_small(), "builder"), "v3"),
        ("mobilenet_v2", lambda: (mobilenet_v2(), "builder"), "v2"),
        ("mobilenet_v3_large_w0.75", lambda: build_v3_width("mobilenet_v3_large", 0.75), "v3"),
        ("mobilenet_v3_small_w0.75", lambda: build_v3_width("mobilenet_v3_small", 0.75), "v3"),
        ("mobilenet_v2_w0.5", lambda: (mobilenet_v2(width_mult=0.5), "builder(width_mult=...)"), "v2"),
        ("mobilenet_v2_w1.4", lambda: (mobilenet_v2(width_mult=1.4), "builder(width_mult=...)"), "v2"),
    ]
    for name, build, kind in specs:
        m, how = build()
        m.eval()
        r = count(m)
        r["built_with"] = how
        r["structure"] = v3_structure(m) if kind == "v3" else v2_structure(m)
        res["models"][name] = r

    # ---- print ----
    print(f"torch {res['torch']}  torchvision {res['torchvision']}  python {res['python']}")
    print(f"\n{'model':28s} {'params':>12s} {'MACs':>14s} {'FLOPs':>14s}  built_with")
    for name, r in res["models"].items():
        print(f"{name:28s} {r['params']:>12d} {r['macs']:>14d} {r['flops']:>14d}  {r['built_with']}")

    for name, r in res["models"].items():
        s = r["structure"]
        print(f"\n=== {name} ===")
        if "blocks" in s:
            st = s["stem"]
            print(f"stem: conv{st['kernel']}x{st['kernel']} {st['in']}->{st['out']} s{st['stride']} {st['act']}")
            print(f"{'idx':>3s} {'in':>4s} {'exp':>4s} {'out':>4s} {'k':>2s} {'s':>2s} {'SE':>3s} {'sq':>4s} {'act':>9s} {'res':>4s}")
            for b in s["blocks"]:
                print(f"{b['index']:>3d} {b['in']:>4d} {b['exp']:>4d} {b['out']:>4d} {b['kernel']:>2d} {b['stride']:>2d} "
                      f"{'Y' if b['se'] else '-':>3s} {str(b['se_squeeze'] or '-'):>4s} {b['act']:>9s} "
                      f"{'Y' if b['residual'] else '-':>4s}")
            lc = s["last_conv"]
            print(f"last conv: 1x1 {lc['in']}->{lc['out']} {lc['act']} bias={lc['bias']}")
            print(f"classifier: {s['classifier']}")
            print(f"SE convs all have bias: {s['se_convs_all_have_bias']}; non-SE convs any bias: {s['non_se_convs_any_bias']}; "
                  f"SE scale act: {sorted({b['se_scale_act'] for b in s['blocks'] if b['se']})}")
            print(f"BatchNorm (eps, momentum): {s['batchnorm_eps_momentum']}  count={s['num_batchnorm']}")
        else:
            print(f"last conv out: {s['last_conv_out']}; classifier: {s['classifier_linears']}; "
                  f"BN (eps, momentum): {s['batchnorm_eps_momentum']}")
        print("MACs per module (params):")
        for k, v in r["macs_per_module"].items():
            print(f"  {k:16s} {v:>12d}  ({r['params_per_module'].get(k, '')})")

    with open(OUT_JSON, "w") as f:
        json.dump(res, f, indent=1)
    print(f"\nsaved {OUT_JSON}")


if __name__ == "__main__":
    main()
