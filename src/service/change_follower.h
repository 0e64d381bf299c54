// Follows a shared store's change log (CatalogStore::changes) into the state being served: items
// another process added, removed or changed are applied to the in-memory items and index in
// place, in milliseconds, instead of reloading the whole catalog. This is how a query replica
// on PostgreSQL sees what workers, imports and other replicas commit.
#pragma once

#include "service/serving_state.h"
#include "store/catalog_store.h"

namespace lookalike {

enum class FollowOutcome {
  kCurrent,  // the state already holds the store's revision
  kApplied,  // the changes since the state's revision were applied in place
  kReload,   // the store keeps no log that far back, or a change needs a full reload
};

// Reads the changes committed after the state's revision and applies them. Idempotent for
// changes the state already holds (this process's own writes): keys are never reused, so an
// item present is the item added. The write lock must be held; memory changes under the
// state's exclusive lock only for the moment of the swap.
FollowOutcome follow_changes(LiveState& live, const LiveState::WriteLock& write, const CatalogStore& store);

}  // namespace lookalike
