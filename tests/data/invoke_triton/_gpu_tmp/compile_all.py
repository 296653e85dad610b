import glob, json, sys
sys.path.insert(0, "src")
from vkc.verify.triton_compile import compile_artifact
for f in sorted(glob.glob("tests/data/invoke_triton/_gpu_tmp/*/artifact.json")):
    r = compile_artifact(f, json.load(open(f)))[0]
    print("COMPILE", r.ok, f.split("/")[-2], r.reason)
