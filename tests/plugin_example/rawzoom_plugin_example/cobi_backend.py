"""A plugin CoBi backend (found through the ``rawzoom_isp.cobi_backends`` entry point): the naive
reference under another name, as a template for a new kernel."""
from rawzoom_isp.loss.naive import naive_cobi


class Reference:
    def unavailable(self, device):
        return None  # runs anywhere

    def __call__(self, targets, outputs, pos_tgt, pos_out, options, memory_budget):
        return naive_cobi(targets, outputs, pos_tgt, pos_out, **options.as_kwargs())
