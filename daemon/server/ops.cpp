// Which function answers which op, and who may call it. The ops themselves are in
// daemon/server/ops/, one file per family.
#include "daemon/server/ops.h"

#include <map>

#include "daemon/server/ops/common.h"

namespace ptbuild {

namespace {

const std::map<std::string_view, ops::OpFunction>& op_table() {
  namespace op = protocol::op;
  static const std::map<std::string_view, ops::OpFunction> table{
      {op::kMatrix.name, ops::op_matrix},
      {op::kStatus.name, ops::op_status},
      {op::kJobs.name, ops::op_jobs},
      {op::kShow.name, ops::op_show},
      {op::kLog.name, ops::op_log},
      {op::kWait.name, ops::op_wait},
      {op::kFixes.name, ops::op_fixes},
      {op::kWatch.name, ops::op_watch},
      {op::kQueue.name, ops::op_queue},
      {op::kCancel.name, ops::op_cancel},
      {op::kRetry.name, ops::op_retry},
      {op::kPause.name, ops::op_pause},
      {op::kResume.name, ops::op_resume},
      {op::kDrain.name, ops::op_drain},
      {op::kPublish.name, ops::op_publish},
      {op::kNightly.name, ops::op_nightly},
      {op::kBuilders.name, ops::op_builders},
      {op::kSetBuilder.name, ops::op_set_builder},
      {op::kGc.name, ops::op_gc},
      {op::kChanges.name, ops::op_changes},
      {op::kBisect.name, ops::op_bisect},
      {op::kProvenance.name, ops::op_provenance},
      {op::kBisectStatus.name, ops::op_bisect_status},
      {op::kBisectCancel.name, ops::op_bisect_cancel},
  };
  return table;
}

}  // namespace

std::optional<OpResult> Ops::handle(const protocol::Request& req, const Caller& caller,
                                    const std::shared_ptr<Channel>& channel) {
  const protocol::OpSpec* spec = protocol::find_op(req.op);
  auto it = op_table().find(req.op);
  if (!spec || it == op_table().end())
    throw OpError{protocol::code::kUnknownOp, "unknown op '" + req.op + "'"};
  if (spec->changes_things && !caller.may_change)
    throw OpError{protocol::code::kPermissionDenied,
                  "'" + req.op + "' changes things: only root, the daemon's user and members of group '" +
                      ctx_.config.daemon.admin_group + "' may do it (uid " + std::to_string(caller.uid) +
                      " may only read)"};
  return it->second(ctx_, ops::OpCall{req, caller, channel});
}

}  // namespace ptbuild
