// `lookalike duplicates`: the groups of items whose photos are copies of one product shot
// (service/copy_finder.h). Items not compared yet (a catalog from before copies were detected,
// or one whose import was interrupted) are compared first.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "service/catalog.h"
#include "service/result_json.h"

namespace lookalike {

void add_duplicates(CLI::App& app, const GlobalOptions& g) {
  auto* cmd =
      app.add_subcommand("duplicates", "List groups of items whose photos are copies of one product shot");
  struct Args {
    bool json = false;
    bool rescan = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_flag("--json", a->json, "Print JSON: {groups: [{items: [...]}], total, items_in_groups}");
  cmd->add_flag("--rescan", a->rescan, "Forget earlier comparisons and compare every item again");
  cmd->callback([&g, a] {
    run(g, [&] {
      Catalog catalog(catalog_options(g), false);
      if (!catalog.ready()) {
        std::fprintf(stderr, "lookalike: error: the catalog is not trained yet; import photos first\n");
        return 1;
      }
      catch_interrupts();
      if (a->rescan) catalog.forget_copies();
      std::optional<ProgressBar> bar;
      const auto started = std::chrono::steady_clock::now();
      const auto summary = catalog.check_copies(
          [&](size_t done, size_t total) {
            if (!bar) bar.emplace("comparing photos for copies", "items/s");
            bar->update(done, total,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                        done);
          },
          {}, &g_interrupted);
      if (bar) bar->finish();
      if (g_interrupted) {
        std::fprintf(stderr, "interrupted: %zu items compared are kept; run it again to go on\n",
                     summary.checked);
        return 130;
      }
      if (summary.unreadable > 0)
        std::fprintf(stderr,
                     "%zu items could not be compared: their stored photo is unreadable (see `check`)\n",
                     summary.unreadable);
      const auto groups = catalog.copy_groups();
      if (a->json) {
        std::cout << copy_groups_json(groups, 0, groups.size(),
                                      [&catalog](const Item& item) { return catalog.image_file(item); })
                         .dump(2)
                  << "\n";
        return 0;
      }
      size_t items = 0;
      for (const auto& group : groups) {
        items += group.size();
        for (size_t i = 0; i < group.size(); ++i) std::printf("%s%s", i ? "  " : "", group[i].id.c_str());
        std::printf("\n");
      }
      std::printf("%zu groups of copies, %zu items in them, of %zu items\n", groups.size(), items,
                  catalog.store().count());
      return 0;
    });
  });
}

}  // namespace lookalike
