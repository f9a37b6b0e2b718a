import { patch } from "@web/core/utils/patch";
import { ImportAction } from "@base_import/import_action/import_action";
import { ImportDataSidepanel } from "@base_import/import_data_sidepanel/import_data_sidepanel";

// Importing leads: what to do with rows that are leads the database already has.
patch(ImportAction.prototype, {
    setup() {
        super.setup();
        if (this.resModel === "crm.lead") {
            this.model.importOptionsValues.crm_import_duplicates = { value: "review" };
        }
    },
});

patch(ImportDataSidepanel.prototype, {
    onDuplicatesChange(ev) {
        this.props.onOptionChanged("crm_import_duplicates", ev.target.value);
    },
});
