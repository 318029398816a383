# ptbuild's verification probe (docs/verification.md): run by the artifact's own Python, it prints one JSON
# object of facts about the torch it finds. It works without a GPU: the architectures a build
# was compiled for come from torch._C._cuda_getArchFlags(), not from a device.
import json
import sys

facts = {"python": sys.version.split()[0]}
try:
    import torch
except Exception as e:  # the artifact is not an importable torch
    facts["error"] = "cannot import torch: %s: %s" % (type(e).__name__, e)
    print(json.dumps(facts))
    sys.exit(0)

facts["torch_version"] = getattr(torch, "__version__", None)
facts["cuda_version"] = getattr(torch.version, "cuda", None)
try:
    flags = torch._C._cuda_getArchFlags() if hasattr(torch._C, "_cuda_getArchFlags") else ""
except Exception:
    flags = ""
facts["arch_flags"] = sorted(set(str(flags).split())) if flags else []
try:
    facts["cuda_available"] = bool(torch.cuda.is_available())
except Exception as e:
    facts["cuda_available"] = False
    facts["cuda_error"] = str(e)
if facts["cuda_available"]:
    try:
        major, minor = torch.cuda.get_device_capability(0)
        facts["device_capability"] = "%d.%d" % (major, minor)
        facts["device_name"] = torch.cuda.get_device_name(0)
        a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
        on_gpu = a.to("cuda") @ a.to("cuda").T
        torch.cuda.synchronize()
        facts["tensor_ok"] = bool(torch.equal(on_gpu.cpu(), a @ a.T))
    except Exception as e:
        facts["tensor_ok"] = False
        facts["tensor_error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(facts))
