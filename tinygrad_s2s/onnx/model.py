def export_run(run, out):
    raise NotImplementedError
