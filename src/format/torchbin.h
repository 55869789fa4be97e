/* PyTorch checkpoints written by torch.save (pytorch_model.bin): a ZIP archive (entries
 * stored, not compressed) holding <name>/data.pkl, a pickle of the state dict, and one
 * <name>/data/<key> file per storage. The pickle is read as data by a small interpreter with
 * an allow-list: the opcodes of protocols 2-4 that state dicts use, and the globals
 * collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the
 * torch.*Storage types. Nothing is imported or executed; any other opcode or global is
 * refused with a message naming it and its offset. Legacy (pre-1.6, tar) files are refused.
 *
 * ZIP structures read (little-endian; zip64 variants when a field is 0xFFFF or 0xFFFFFFFF):
 *   end of central directory  0x06054b50: entries (u16 @10), dir size (u32 @12), dir offset (u32
 * @16) zip64 locator 0x07064b50 (@-20 from the EOCD): zip64 EOCD offset (u64 @8) zip64 EOCD
 * 0x06064b50: entries (u64 @32), dir size (u64 @40), dir offset (u64 @48) central entry 0x02014b50:
 * method (u16 @10), csize (u32 @20), usize (u32 @24), name len (u16 @28), extra len (u16 @30),
 * comment len (u16 @32), local offset (u32 @42), name @46 local header 0x04034b50: name len (u16
 * @26), extra len (u16 @28), data @30 + both */
#ifndef PQ_TORCHBIN_H
#define PQ_TORCHBIN_H

#include "format/safetensors.h"

/* Adds the tensors of one torch.save file held in buf. */
int pq_torch_add_buffer(pq_tensors *ts, const char *what, const uint8_t *buf, size_t size,
                        polyq_err *err);
/* Maps and adds one pytorch_model.bin. */
int pq_tensors_open_torch(pq_tensors *ts, const char *path, polyq_err *err);

#endif
